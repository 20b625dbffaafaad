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
from typing import get_args

import numpy as np
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Gauge, Histogram, Info, start_http_server
from prometheus_client import Counter as PromCounter

from schemas.model import RejectionReason
from schemas.segments import RiskBandChange, SegmentChange
from scoring.outcomes import Outcome
from scoring.populations import Populations
from scoring.reassignment import PartitionStatus
from scoring.traits import BAND_ORDER

LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0, 21600.0, 86400.0, float("inf"),
)  # fmt: skip


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


class WorkerMetrics:
    """All series of one worker, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._names: dict[int, str] = {}
        self._created_at: float | None = None
        self._event_series(self.registry)
        self._segment_series(self.registry)
        self._model_series(self.registry)
        self._partition_series(self.registry)
        self._drift_series(self.registry)
        self._state_series(self.registry)

    def _event_series(self, r: CollectorRegistry) -> None:
        """Valid events, rejections, dead letters, latency, and which worker this is."""
        self.events = PromCounter(
            "rescorer_events_processed_total", "Valid events by outcome", ["outcome"], registry=r
        )
        self.rejected = PromCounter(
            "rescorer_events_rejected_total", "Messages sent to the dead-letter topic, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.info = Info("rescorer_worker", "This worker process", registry=r)
        self.consumed = PromCounter(
            "rescorer_events_consumed_total", "Valid events by type", ["type"], registry=r
        )
        self.dead_letters = PromCounter(
            "rescorer_dead_letters_total", "Records written to the dead-letter topic", registry=r
        )
        self.latency = Histogram(
            "rescorer_event_latency_seconds",
            "From an event's time (clock=event) or its arrival in Kafka (clock=ingest) "
            "to its batch's outputs being flushed",
            ["clock"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip

    def _segment_series(self, r: CollectorRegistry) -> None:
        """Segment changes, populations, feedback and the sweep."""
        self.changes = PromCounter(
            "rescorer_segment_changes_total", "Segment changes emitted",
            ["from_segment", "to_segment", "reason"], registry=r,
        )  # fmt: skip
        self.population = Gauge(
            "rescorer_segment_population", "Assigned customers in owned partitions",
            ["segment"], registry=r,
        )  # fmt: skip
        self.feedback = PromCounter(
            "rescorer_feedback_total",
            "Valid feedback by the customer's segment when given and the segment proposed",
            ["current_segment", "proposed_segment"], registry=r,
        )  # fmt: skip
        self.holdout_population = Gauge(
            "rescorer_segment_holdout_population",
            "Assigned customers in owned partitions held out as the control group",
            ["segment"], registry=r,
        )  # fmt: skip
        self.swept = PromCounter(
            "rescorer_swept_customers_total", "Customers re-scored by the sweep", registry=r
        )
        self._trait_series(r)
        self.sweep_seconds = Histogram(
            "rescorer_sweep_duration_seconds", "Duration of one sweep tick", registry=r
        )
        self.batch_seconds = Histogram(
            "rescorer_batch_duration_seconds", "Duration of one event batch", registry=r
        )

    def _trait_series(self, r: CollectorRegistry) -> None:
        """Predictive traits: bands, p_alive, band changes, the calibration of expectations."""
        self.band_population = Gauge(
            "rescorer_segment_risk_band_population",
            "Assigned customers with traits in owned partitions, by churn-risk band",
            ["segment", "band"], registry=r,
        )  # fmt: skip
        self.p_alive_sum = Gauge(
            "rescorer_segment_p_alive_sum",
            "Sum of the probability alive of a segment's customers with traits (as of their "
            "last evaluation); divide by the band populations' sum for the mean",
            ["segment"], registry=r,
        )  # fmt: skip
        self.band_changes = PromCounter(
            "rescorer_risk_band_changes_total", "Risk-band changes emitted",
            ["segment", "from_band", "to_band", "reason"], registry=r,
        )  # fmt: skip
        self.expected_repeats = PromCounter(
            "rescorer_expected_repeat_purchases_total",
            "Repeat purchase days BG/NBD expected of re-scored customers since their previous "
            "evaluation (by their segment now)",
            ["segment"], registry=r,
        )  # fmt: skip
        self.actual_repeats = PromCounter(
            "rescorer_repeat_purchases_total",
            "Repeat purchase days those customers made in the same stretches",
            ["segment"], registry=r,
        )  # fmt: skip

    def _model_series(self, r: CollectorRegistry) -> None:
        """The active model and refused artifacts."""
        self.model_version = Gauge(
            "rescorer_model_version", "Version of the active model", registry=r
        )
        self.models_rejected = PromCounter(
            "rescorer_models_rejected_total",
            "Model artifacts refused: invalid, unsigned, signed with an unknown key, bad signature",
            ["reason"], registry=r,
        )  # fmt: skip
        for reason in get_args(RejectionReason):  # every reason reads 0 from the start
            self.models_rejected.labels(reason)
        self.model_created = Gauge(
            "rescorer_model_created_timestamp_seconds", "When the active model was trained",
            registry=r,
        )  # fmt: skip
        self.model_age = Gauge(
            "rescorer_model_age_seconds", "Seconds since the active model was trained", registry=r
        )
        self.model_age.set_function(
            lambda: 0.0 if self._created_at is None else time.time() - self._created_at
        )

    def _partition_series(self, r: CollectorRegistry) -> None:
        """Per owned partition: clock, input lag, sweep backlog."""
        self.watermark = Gauge(
            "rescorer_watermark_timestamp_seconds", "Event-time clock of an owned partition",
            ["partition"], registry=r,
        )  # fmt: skip
        self.watermark_lag = Gauge(
            "rescorer_watermark_lag_seconds", "Wall clock minus a partition's event-time clock",
            ["partition"], registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "rescorer_consumer_lag_messages", "Unprocessed input messages of an owned partition",
            ["partition"], registry=r,
        )  # fmt: skip
        self.scheduled = Gauge(
            "rescorer_sweep_scheduled_customers", "Customers in a partition's due index",
            ["partition"], registry=r,
        )  # fmt: skip
        self.overdue = Gauge(
            "rescorer_sweep_overdue_customers",
            "Customers due more than one sweep period ago and not yet re-scored",
            ["partition"], registry=r,
        )  # fmt: skip

    def _drift_series(self, r: CollectorRegistry) -> None:
        """Feature and centroid drift, detections."""
        self.feature_psi = Gauge(
            "rescorer_feature_psi", "PSI of live features against the model's reference",
            ["feature"], registry=r,
        )  # fmt: skip
        self.feature_ks = Gauge(
            "rescorer_feature_ks_distance",
            "Kolmogorov-Smirnov distance of live features from the model's reference (binned)",
            ["feature"], registry=r,
        )  # fmt: skip
        self.drift_window = Gauge(
            "rescorer_drift_window_customers", "Customers the feature drift is measured over",
            registry=r,
        )  # fmt: skip
        self.centroid_drift = Gauge(
            "rescorer_centroid_drift",
            "Distance of an online centroid from the model's baseline (standardised units)",
            ["segment", "partition"], registry=r,
        )  # fmt: skip
        self.detections = PromCounter(
            "rescorer_drift_detections_total",
            "ADWIN detections on customers' distance to their centroid", registry=r,
        )  # fmt: skip

    def _state_series(self, r: CollectorRegistry) -> None:
        """The store, standby replicas, input gaps, retrain requests."""
        self.store_wipes = PromCounter(
            "rescorer_store_wipes_total",
            "Table partitions on disk found untrustworthy and rebuilt from the changelog",
            ["table", "reason"], registry=r,
        )  # fmt: skip
        self.store_caught_up = PromCounter(
            "rescorer_store_caught_up_records_total",
            "Changelog records table recovery left unread, read by the worker before taking "
            "the partition", ["table"], registry=r,
        )  # fmt: skip
        self.store_bytes = Gauge(
            "rescorer_store_disk_bytes", "Bytes of the held table partitions on disk",
            ["table"], registry=r,
        )  # fmt: skip
        self.standby_lag = Gauge(
            "rescorer_standby_lag_records",
            "Changelog records the standby replicas held here have still to apply",
            registry=r,
        )
        self.input_gaps = PromCounter(
            "rescorer_input_offset_gaps_total",
            "Jumps over input offsets that hold no records (transaction markers, compaction)",
            registry=r,
        )  # fmt: skip
        self.redelivered = PromCounter(
            "rescorer_input_redelivered_total",
            "Input records at offsets this worker had already processed (read again after a "
            "restart or a rebalance; their events count once)",
            registry=r,
        )  # fmt: skip
        self.retrain_requests = PromCounter(
            "rescorer_retrain_requests_total", "Retrain requests published", registry=r
        )

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
        moves: Counter[tuple[str, str, str, str]] = Counter()
        for change in changes:
            before = "none" if change.previous_band is None else change.previous_band.value
            moves[(change.segment_name, before, change.band.value, change.reason.value)] += 1
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
