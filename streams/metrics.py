"""The worker's Prometheus metrics (prometheus-client), served at ``/metrics``.

Every worker counts only what it processed and reports per-partition gauges
(populations, watermarks, centroid drift, sweep backlog) only for the
partitions it owns, so ``sum()`` across workers is right in PromQL. Feature
drift is measured over each worker's own customers: aggregate it with
``max by (feature)``, never ``sum``.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from prometheus_client import Histogram, start_http_server

from schemas.segments import RiskBandChange, SegmentChange
from scoring.outcomes import Outcome
from scoring.populations import Populations
from scoring.reassignment import PartitionStatus
from scoring.traits import BAND_ORDER
from streams.metric_series import WorkerSeries


@dataclass(frozen=True)
class Totals:
    """Running totals of a worker since it started (what its progress line says)."""

    applied: int
    duplicate: int
    too_old: int
    dead_letters: int
    changes: int
    swept: int
    redelivered: int
    gaps: int


class WorkerMetrics(WorkerSeries):
    """What the worker records into its series (`streams.metric_series`)."""

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[int, str] = {}

    def serve(self, port: int, address: str = "0.0.0.0") -> None:  # noqa: S104 - a scrape target
        """Start the ``/metrics`` HTTP server in a background thread."""
        start_http_server(port, addr=address, registry=self.registry)

    def count(self, counts: Mapping[Outcome, int], swept: int) -> None:
        """Fold a `RescoreResult`'s outcomes and sweep count in."""
        for outcome, n in counts.items():
            if n:
                self.events.labels(outcome.value).inc(n)
        if swept:
            self.swept.inc(swept)

    def totals(self) -> Totals:
        """The running totals the progress log line shows, read back from the counters."""

        def value(name: str, **labels: str) -> int:
            return int(self.registry.get_sample_value(name, labels) or 0)

        events = "rescorer_events_processed_total"
        return Totals(
            applied=value(events, outcome=Outcome.APPLIED.value),
            duplicate=value(events, outcome=Outcome.DUPLICATE.value),
            too_old=value(events, outcome=Outcome.TOO_OLD.value),
            dead_letters=value("rescorer_dead_letters_total"),
            changes=int(sum(
                sample.value for metric in self.changes.collect() for sample in metric.samples
                if sample.name.endswith("_total")
            )),
            swept=value("rescorer_swept_customers_total"),
            redelivered=value("rescorer_input_redelivered_total"),
            gaps=value("rescorer_input_offset_gaps_total"),
        )  # fmt: skip

    def observe_latency(self, clock: str, seconds: Sequence[float]) -> None:
        """Observe a batch's latencies (negative ones, from clock skew, count as 0)."""
        observe_many(self.latency.labels(clock), np.maximum(np.asarray(seconds), 0.0))

    def changed(self, changes: Iterable[SegmentChange]) -> None:
        """Count segment changes by where from, where to and why."""
        moves: Counter[tuple[int | None, str, str]] = Counter()
        for change in changes:
            moves[(change.previous_segment_id, change.segment_name, change.reason.value)] += 1
        for (before, name, reason), n in moves.items():
            self.changes.labels("none" if before is None else self.name(before), name, reason).inc(
                n
            )

    def publish_populations(self, populations: Populations) -> None:
        """Segment, holdout and risk-band populations and p_alive sums as the state has them."""
        customers, held = populations.totals()
        self.population.clear()
        self.holdout_population.clear()
        for segment_id, value in customers.items():
            self.population.labels(self.name(segment_id)).set(value)
            self.holdout_population.labels(self.name(segment_id)).set(held[segment_id])
        cells, alive = populations.bands()
        self.band_population.clear()
        self.p_alive_sum.clear()
        for segment_id in {s for s, _ in cells}:
            for code, band in enumerate(BAND_ORDER):  # every band, so an empty one reads 0
                self.band_population.labels(self.name(segment_id), band.value).set(
                    cells[(segment_id, code)]
                )
        for segment_id, total in alive.items():
            self.p_alive_sum.labels(self.name(segment_id)).set(total)

    def band_changed(self, changes: Iterable[RiskBandChange]) -> None:
        """Count risk-band changes by segment, bands and why."""
        # The bands and reasons are StrEnums, their own label values (no `.value` lookups).
        moves: Counter[tuple[str, str, str, str]] = Counter(
            (c.segment_name, c.previous_band or "none", c.band, c.reason) for c in changes
        )
        for labels, n in moves.items():
            self.band_changes.labels(*labels).inc(n)

    def calibrate(
        self, segments: NDArray[np.int64], expected: NDArray[np.float64], bought: NDArray[np.int64]
    ) -> None:
        """Add what the model expected and what customers did, per segment."""
        ids, inverse = np.unique(segments, return_inverse=True)
        inverse = inverse.reshape(-1)
        want = np.bincount(inverse, weights=expected, minlength=len(ids))
        did = np.bincount(inverse, weights=bought.astype(np.float64), minlength=len(ids))
        for segment_id, w, d in zip(ids.tolist(), want.tolist(), did.tolist(), strict=True):
            name = self.name(segment_id)
            if w > 0:
                self.expected_repeats.labels(name).inc(w)
            if d > 0:
                self.actual_repeats.labels(name).inc(d)

    def set_model(self, version: int, created_at: float, names: Mapping[int, str]) -> None:
        """The active model: its version, age and the names populations are reported under."""
        self.model_version.set(version)
        self.model_created.set(created_at)
        self._created_at = created_at
        self._names = dict(names)
        self.centroid_drift.clear()
        # The calibration counters start at zero for every segment, so the first purchases
        # show in increase() rather than being taken for the counter's starting value.
        for name in self._names.values():
            self.expected_repeats.labels(name)
            self.actual_repeats.labels(name)

    def name(self, segment_id: int) -> str:
        """A segment's label: its name in the active model."""
        return self._names.get(segment_id, str(segment_id))

    def set_drift(self, psi: Mapping[str, float], ks: Mapping[str, float], customers: int) -> None:
        """The latest feature drift reading."""
        for feature, value in psi.items():
            self.feature_psi.labels(feature).set(value)
        for feature, value in ks.items():
            self.feature_ks.labels(feature).set(value)
        self.drift_window.set(customers)

    def set_partition_state(self, status: PartitionStatus) -> None:
        """Per-partition gauges of an owned partition."""
        label = str(status.partition)
        if status.watermark is not None:
            seconds = status.watermark.timestamp()
            self.watermark.labels(label).set(seconds)
            self.watermark_lag.labels(label).set(time.time() - seconds)
        self.scheduled.labels(label).set(status.scheduled)
        self.overdue.labels(label).set(status.overdue)
        for segment, value in status.centroid_drift.items():
            self.centroid_drift.labels(segment, label).set(value)

    def drop_partition(self, partition: int) -> None:
        """Remove the series of a partition this worker no longer owns."""
        label = str(partition)
        gauges = (self.watermark, self.watermark_lag, self.scheduled, self.overdue, self.lag)
        for gauge in gauges:
            with contextlib.suppress(KeyError):
                gauge.remove(label)
        for segment in self._names.values():
            with contextlib.suppress(KeyError):
                self.centroid_drift.remove(segment, label)


def observe_many(histogram: Histogram, values: NDArray[np.float64]) -> None:
    """`histogram.observe` for every value, in one pass per bucket instead of per value.

    prometheus-client keeps one counter per bucket (made cumulative when
    scraped) and a sum; a batch of thousands of latencies is counted per
    bucket with numpy and added in a single increment each. A test checks
    the exposition equals observing one value at a time.
    """
    if not len(values):
        return
    bounds = np.asarray(histogram._upper_bounds, dtype=np.float64)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    histogram._sum.inc(float(values.sum()))
    for bucket, n in zip(histogram._buckets, counts.tolist(), strict=False):
        if n:
            bucket.inc(n)
