"""Worker metrics: batch observation counts exactly what one-at-a-time observation does."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from scoring.outcomes import Outcome
from streams.metric_series import LATENCY_BUCKETS
from streams.metrics import WorkerMetrics, observe_many


def series(registry: CollectorRegistry) -> dict[str, float]:
    lines = generate_latest(registry).decode().splitlines()
    return {
        name: float(value)
        for name, value in (line.rsplit(" ", 1) for line in lines if line.startswith("lat_"))
        if not name.startswith("lat_created")
    }


def test_observing_a_batch_equals_observing_each_value() -> None:
    values = np.concatenate(
        [np.random.default_rng(2).exponential(0.3, 5_000), np.array([0.0, 0.005, 1.0, 1e9])]
    )
    one, many = CollectorRegistry(), CollectorRegistry()
    single = Histogram("lat", "x", buckets=LATENCY_BUCKETS, registry=one)
    batch = Histogram("lat", "x", buckets=LATENCY_BUCKETS, registry=many)
    for value in values:
        single.observe(float(value))
    observe_many(batch, values)
    observe_many(batch, np.zeros(0))
    expected, got = series(one), series(many)
    assert len(expected) == len(LATENCY_BUCKETS) + 2  # the buckets, _count and _sum
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9), name


def test_the_progress_totals_are_read_back_from_the_counters() -> None:
    """Each count is kept once, in its Prometheus counter; the log line reads it there."""
    metrics = WorkerMetrics()
    metrics.count({Outcome.APPLIED: 5, Outcome.DUPLICATE: 2, Outcome.TOO_OLD: 1}, swept=7)
    metrics.dead_letters.inc(3)
    metrics.redelivered.inc(4)
    metrics.input_gaps.inc(1)
    metrics.changes.labels("none", "Champions", "first_purchase").inc(2)
    metrics.changes.labels("Champions", "Loyal", "recency").inc()
    totals = metrics.totals()
    assert (totals.applied, totals.duplicate, totals.too_old, totals.swept) == (5, 2, 1, 7)
    assert (totals.dead_letters, totals.redelivered, totals.gaps, totals.changes) == (3, 4, 1, 3)
