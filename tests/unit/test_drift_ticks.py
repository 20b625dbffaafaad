"""A drift tick: gauges, and a retrain request only once the worker has caught up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from schemas.retrain import RetrainRequest
from scoring.drift_monitor import FeatureDrift
from scoring.reassignment import RescoreConfig, Rescorer
from scoring.retrain_policy import RetrainPolicy, RetrainThresholds
from streams.drift_ticks import DriftTicks
from streams.metrics import WorkerMetrics
from tests.support.toy_model import toy_model


@dataclass
class Monitor:
    """The drift monitor as a tick reads it: population drift and detector alarms."""

    detections: int = 0

    def feature_drift(self, clocks: dict[int, int]) -> FeatureDrift:
        return FeatureDrift({"recency_days": 0.01}, {"recency_days": 0.01}, 1_000)


def ticks() -> tuple[DriftTicks, WorkerMetrics, list[RetrainRequest]]:
    metrics, sent = WorkerMetrics(), []

    async def publish(request: RetrainRequest) -> None:
        sent.append(request)

    policy = RetrainPolicy(RetrainThresholds(detector_alarms=2, min_customers=1))
    return DriftTicks(metrics, policy, publish, "worker-7", max_lag_events=100), metrics, sent


def test_a_worker_behind_its_input_asks_for_nothing_and_starts_counting_afresh() -> None:
    tick, metrics, sent = ticks()
    rescorer = Rescorer(toy_model(version=3), RescoreConfig())
    monitor = Monitor(detections=5)
    asyncio.run(tick.tick(rescorer, monitor, [0, 1], {0: 80, 1: 40}))  # 120 behind
    assert sent == []
    assert (
        metrics.registry.get_sample_value("rescorer_consumer_lag_messages", {"partition": "0"})
        == 80
    )
    # Caught up: the alarms raised while behind were the backlog's, not today's.
    asyncio.run(tick.tick(rescorer, monitor, [0, 1], {0: 0, 1: 0}))
    assert sent == []
    monitor.detections = 7  # two more alarms since
    asyncio.run(tick.tick(rescorer, monitor, [0, 1], {0: 0, 1: 0}))
    assert [(r.model_version, r.raised_by) for r in sent] == [(3, "worker-7")]
    assert sent[0].evidence.triggers == ("detector_alarms",)
    assert len(sent) == 1
    assert metrics.registry.get_sample_value("rescorer_retrain_requests_total") == 1
