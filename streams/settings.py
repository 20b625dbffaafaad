"""Settings of the worker deployable (``RESCORER_*`` environment variables)."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from schemas.settings import RescorerSettings
from scoring.drift_monitor import DEFAULT_ADWIN_DELTA
from scoring.holdout import HoldoutPolicy
from scoring.hysteresis import DEFAULT_MARGIN, check_margin
from scoring.online_clusters import DEFAULT_LEARNING_RATE
from scoring.reassignment import RescoreConfig
from scoring.retrain_policy import RetrainThresholds
from scoring.sweep_slices import DEFAULT_BUDGET_SECONDS
from scoring.traits import BandThresholds

_DEFAULT_THRESHOLDS = RetrainThresholds()


class WorkerSettings(RescorerSettings):
    """Everything `rescorer worker` reads; see the README's settings table."""

    app_id: str = "segment-rescorer"
    partitions: Annotated[int, Field(ge=1, le=1024)] = 8
    replication_factor: Annotated[int, Field(ge=1)] = 1
    store: Literal["rescorer://", "memory://"] = "rescorer://"
    """``rescorer://``: durable, a log file per table partition under `data_dir`;
    ``memory://``: Faust's in-memory store, rebuilt from the changelogs on every start."""
    data_dir: Path = Path("./worker-data")
    group_instance_id: Annotated[str, Field(min_length=1, max_length=249)] | None = None
    """Kafka static group membership (KIP-345): a restart within the session timeout
    keeps this worker's partitions, with no rebalance."""
    standby_replicas: Annotated[int, Field(ge=0)] = 1
    hysteresis_margin: Annotated[float, AfterValidator(check_margin)] = DEFAULT_MARGIN
    learning_rate: Annotated[float, Field(ge=0.0, le=1.0)] = DEFAULT_LEARNING_RATE
    sweep_period_hours: Annotated[float, Field(gt=0.0)] = 24.0
    recheck_days: Annotated[float, Field(gt=0.0)] = 30.0
    clock: Literal["event", "wall"] = "event"
    sweep_slice_seconds: Annotated[float, Field(gt=0.0)] = DEFAULT_BUDGET_SECONDS
    batch_max_events: Annotated[int, Field(ge=1)] = 10_000
    batch_within_seconds: Annotated[float, Field(gt=0.0)] = 0.05
    model_poll_seconds: Annotated[float, Field(gt=0.0)] = 1.0
    commit_interval_seconds: Annotated[float, Field(gt=0.0)] = 1.0
    session_timeout_seconds: Annotated[float, Field(ge=6.0)] = 30.0
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    """``exactly_once``: each step's outputs, changelog records and input positions in
    one Kafka transaction per partition (`streams.transactions`); needs the durable store."""
    changes_include_features: bool = True
    """False: `segment-changes` carry the label but not the customer's features (spend)."""
    web_port: Annotated[int, Field(ge=0, le=65535)] = 6066
    """The lookup API (Faust's web server); 0 turns it off."""
    web_bind: str = "0.0.0.0"  # noqa: S104 - a server's listen address, set per deployment
    web_host: str = Field(default_factory=socket.gethostname)
    """How the other workers reach this one's web server (its canonical URL's host)."""
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9464
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    drift_interval_seconds: Annotated[float, Field(gt=0.0)] = 15.0
    drift_max_lag_events: Annotated[int, Field(ge=0)] = 10_000
    drift_adwin_delta: Annotated[float, Field(gt=0.0, lt=1.0)] = DEFAULT_ADWIN_DELTA
    retrain_psi: Annotated[float, Field(gt=0.0)] = _DEFAULT_THRESHOLDS.psi
    retrain_psi_sustain_seconds: Annotated[float, Field(ge=0.0)] = (
        _DEFAULT_THRESHOLDS.psi_sustain_seconds
    )
    retrain_centroid_drift: Annotated[float, Field(gt=0.0)] = _DEFAULT_THRESHOLDS.centroid_drift
    retrain_detector_alarms: Annotated[int, Field(ge=1)] = _DEFAULT_THRESHOLDS.detector_alarms
    retrain_cooldown_seconds: Annotated[float, Field(ge=0.0)] = _DEFAULT_THRESHOLDS.cooldown_seconds
    retrain_min_customers: Annotated[int, Field(ge=1)] = _DEFAULT_THRESHOLDS.min_customers

    @model_validator(mode="after")
    def _exactly_once_has_a_durable_store(self) -> WorkerSettings:
        if self.exactly_once and self.store != "rescorer://":
            raise ValueError(
                "RESCORER_PROCESSING_GUARANTEE=exactly_once needs RESCORER_STORE=rescorer:// "
                f"(not {self.store}): a partition is fenced and brought up to its changelog's "
                "committed end by the durable store"
            )
        return self

    @property
    def exactly_once(self) -> bool:
        """Whether each step's effects are written in Kafka transactions."""
        return self.processing_guarantee == "exactly_once"

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
            holdout=HoldoutPolicy.from_settings(self),
            traits_horizon_days=self.traits_horizon_days,
            bands=BandThresholds(self.risk_band_medium, self.risk_band_high),
        )

    def retrain_thresholds(self) -> RetrainThresholds:
        """When the worker asks for a retrain."""
        return RetrainThresholds(
            psi=self.retrain_psi,
            psi_sustain_seconds=self.retrain_psi_sustain_seconds,
            centroid_drift=self.retrain_centroid_drift,
            detector_alarms=self.retrain_detector_alarms,
            cooldown_seconds=self.retrain_cooldown_seconds,
            min_customers=self.retrain_min_customers,
        )
