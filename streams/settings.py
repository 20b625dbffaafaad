"""Settings of the worker deployable (``RESCORER_*`` environment variables)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from schemas.settings import RescorerSettings
from scoring.hysteresis import DEFAULT_MARGIN
from scoring.online_clusters import DEFAULT_LEARNING_RATE
from scoring.rescorer import RescoreConfig


class WorkerSettings(RescorerSettings):
    """Everything `rescorer worker` reads; see the README's settings table."""

    app_id: str = "segment-rescorer"
    partitions: Annotated[int, Field(ge=1, le=1024)] = 8
    replication_factor: Annotated[int, Field(ge=1)] = 1
    store: Literal["memory://"] = "memory://"
    data_dir: Path = Path("./worker-data")
    standby_replicas: Annotated[int, Field(ge=0)] = 1
    hysteresis_margin: Annotated[float, Field(ge=0.0, lt=1.0)] = DEFAULT_MARGIN
    learning_rate: Annotated[float, Field(ge=0.0, le=1.0)] = DEFAULT_LEARNING_RATE
    sweep_period_hours: Annotated[float, Field(gt=0.0)] = 24.0
    recheck_days: Annotated[float, Field(gt=0.0)] = 30.0
    sweep_interval_seconds: Annotated[float, Field(gt=0.0)] = 1.0
    sweep_max_per_tick: Annotated[int, Field(ge=1)] = 20_000
    clock: Literal["event", "wall"] = "event"
    batch_max_events: Annotated[int, Field(ge=1)] = 2_000
    batch_within_seconds: Annotated[float, Field(gt=0.0)] = 0.05
    max_poll_records: Annotated[int, Field(ge=1)] = 5_000
    stream_buffer_size: Annotated[int, Field(ge=1)] = 16_384
    model_poll_seconds: Annotated[float, Field(gt=0.0)] = 1.0
    commit_interval_seconds: Annotated[float, Field(gt=0.0)] = 1.0
    session_timeout_seconds: Annotated[float, Field(ge=6.0)] = 30.0
    processing_guarantee: Literal["at_least_once"] = "at_least_once"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9464

    def rescore_config(self) -> RescoreConfig:
        """The pure core's configuration."""
        return RescoreConfig(
            margin=self.hysteresis_margin,
            learning_rate=self.learning_rate,
            sweep_period=timedelta(hours=self.sweep_period_hours),
            recheck_period=max(
                timedelta(days=self.recheck_days), timedelta(hours=self.sweep_period_hours)
            ),
            clock=self.clock,
        )
