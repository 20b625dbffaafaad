"""Every series a worker exposes: names, help texts, labels, buckets.

These are the contract `grafana/` and the Prometheus rules read; how the
worker records into them is `streams.metrics.WorkerMetrics`'.
"""

from __future__ import annotations

import time
from typing import get_args

from prometheus_client import CollectorRegistry, Gauge, Histogram, Info
from prometheus_client import Counter as PromCounter

from schemas.model import RejectionReason

LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0, 21600.0, 86400.0, float("inf"),
)  # fmt: skip


class WorkerSeries:
    """All series of one worker, declared in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._created_at: float | None = None
        """When the active model was trained (the model age gauge reads it)."""
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
        self.reader_renewals = PromCounter(
            "rescorer_event_reader_renewals_total",
            "Event consumers replaced because they fetched nothing while the broker held "
            "events past their positions",
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
