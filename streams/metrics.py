"""The worker's Prometheus metrics (prometheus-client), served at ``/metrics``.

Every worker counts only what it processed and reports populations only for
the partitions it owns, so ``sum()`` across workers is right in PromQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server
from prometheus_client import Counter as PromCounter

from schemas.segments import SegmentChange

OUTCOMES = ("applied", "duplicate", "too_old", "session", "future")


class WorkerMetrics:
    """All series of one worker, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = PromCounter(
            "rescorer_events_processed_total", "Valid events by outcome", ["outcome"], registry=r
        )
        self.rejected = PromCounter(
            "rescorer_events_rejected_total", "Messages sent to the dead-letter topic, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.changes = PromCounter(
            "rescorer_segment_changes_total", "Segment changes emitted",
            ["from_segment", "to_segment", "reason"], registry=r,
        )  # fmt: skip
        self.population = Gauge(
            "rescorer_segment_population", "Assigned customers in owned partitions",
            ["segment"], registry=r,
        )  # fmt: skip
        self.swept = PromCounter(
            "rescorer_swept_customers_total", "Customers re-scored by the sweep", registry=r
        )
        self.sweep_seconds = Histogram(
            "rescorer_sweep_duration_seconds", "Duration of one sweep tick", registry=r
        )
        self.batch_seconds = Histogram(
            "rescorer_batch_duration_seconds", "Duration of one event batch", registry=r
        )
        self.model_version = Gauge(
            "rescorer_model_version", "Version of the active model", registry=r
        )
        self.models_rejected = PromCounter(
            "rescorer_models_rejected_total", "Model artifacts that failed validation", registry=r
        )
        self._population: dict[int, Counter[int]] = {}
        self._names: dict[int, str] = {}

    def serve(self, port: int, address: str = "0.0.0.0") -> None:  # noqa: S104 - a scrape target
        """Start the ``/metrics`` HTTP server in a background thread."""
        start_http_server(port, addr=address, registry=self.registry)

    def count(self, counts: Mapping[str, int]) -> None:
        """Fold a `Rescored.counts` in."""
        for outcome in OUTCOMES:
            if counts.get(outcome):
                self.events.labels(outcome).inc(counts[outcome])
        if counts.get("swept"):
            self.swept.inc(counts["swept"])

    def changed(self, changes: Iterable[SegmentChange], partition_of: Mapping[str, int]) -> None:
        """Count changes and move customers between segment populations."""
        for change in changes:
            before = change.previous_segment_id
            self.changes.labels(
                "none" if before is None else self._names.get(before, str(before)),
                change.segment_name,
                change.reason.value,
            ).inc()
            population = self._population.setdefault(
                partition_of.get(change.customer_id, -1), Counter()
            )
            if before is not None:
                population[before] -= 1
            population[change.segment_id] += 1
        self._publish()

    def set_model(self, version: int, names: Mapping[int, str]) -> None:
        """The active model: its version and the names populations are reported under."""
        self.model_version.set(version)
        self._names = dict(names)
        self._publish()

    def set_partition(self, partition: int, counts: Counter[int] | None) -> None:
        """Replace (or with None, drop) a partition's population after a rebalance."""
        if counts is None:
            self._population.pop(partition, None)
        else:
            self._population[partition] = counts
        self._publish()

    def _publish(self) -> None:
        total: Counter[int] = Counter()
        for counts in self._population.values():
            total.update(counts)
        self.population.clear()
        for segment_id, value in total.items():
            self.population.labels(self._names.get(segment_id, str(segment_id))).set(value)
