"""Drift ticks: per-partition gauges, feature drift, and retrain requests when due.

Every ``RESCORER_DRIFT_INTERVAL_SECONDS`` the worker publishes what its
partitions look like (watermarks, sweep backlog, centroid drift, input lag)
and the drift of its whole owned population, then asks the retrain policy
whether the evidence calls for a new model. Drift is only judged once the
worker has caught up with its input: a backlog is not today's customers.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime

from schemas.retrain import RetrainRequest
from scoring.customer_record import epoch_micros
from scoring.drift_monitor import DriftMonitor
from scoring.reassignment import Rescorer
from scoring.retrain_policy import RetrainPolicy
from streams.metrics import WorkerMetrics

log = logging.getLogger(__name__)

Publish = Callable[[RetrainRequest], Awaitable[None]]


class DriftTicks:
    """What one drift tick measures, publishes and decides."""

    def __init__(
        self,
        metrics: WorkerMetrics,
        policy: RetrainPolicy,
        publish: Publish,
        worker_id: str,
        max_lag_events: int,
    ) -> None:
        self.metrics = metrics
        self.policy = policy
        self.publish = publish
        self.worker_id = worker_id
        self.max_lag_events = max_lag_events

    async def tick(
        self,
        rescorer: Rescorer,
        monitor: DriftMonitor,
        owned: Iterable[int],
        lag: Mapping[int, int],
    ) -> None:
        """Measure, publish, and raise a retrain request if the policy says so."""
        version = rescorer.model.version
        clocks: dict[int, int] = {}
        centroid_drift: dict[str, float] = {}
        for partition in sorted(owned):
            status = rescorer.status(partition)
            if status is None:
                continue
            for name, value in status.centroid_drift.items():
                centroid_drift[name] = max(value, centroid_drift.get(name, 0.0))
            if status.watermark is not None:
                clocks[partition] = epoch_micros(status.watermark)
            self.metrics.set_partition_state(status)
        for partition, behind in lag.items():
            self.metrics.lag.labels(str(partition)).set(behind)
        drift = monitor.feature_drift(clocks)
        self.metrics.set_drift(drift.psi, drift.ks, drift.customers)
        if sum(lag.values()) > self.max_lag_events:
            # Catching up: today's customers are not all in yet, and what the
            # detector sees is the backlog, not today. Judge from here on.
            self.policy.reset(monitor.detections)
            return
        evidence = self.policy.evaluate(time.monotonic(), drift, centroid_drift, monitor.detections)
        if evidence is None:
            return
        request = RetrainRequest(
            request_id=uuid.uuid4().hex,
            model_version=version,
            raised_at=datetime.now(UTC),
            raised_by=self.worker_id,
            evidence=evidence,
        )
        await self.publish(request)
        self.metrics.retrain_requests.inc()
        triggers = ", ".join(evidence.triggers)
        log.info("retrain requested for model v%d: %s", version, triggers)
