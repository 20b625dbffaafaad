"""What the worker's parts share: the core objects, and the lock that serialises them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from schemas.model import SegmentModel
from scoring.drift_monitor import DriftMonitor
from scoring.populations import Populations
from scoring.reassignment import RescoreConfig, Rescorer


@dataclass
class WorkerState:
    """The rescorer and drift monitor once a model is loaded; every change under `lock`.

    The lock is held by an event batch (with its sweep slice), a drift tick, a
    model swap and the revocation of partitions, so each sees the others whole.
    """

    config: RescoreConfig
    adwin_delta: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    model_ready: asyncio.Event = field(default_factory=asyncio.Event)
    populations: Populations = field(init=False)
    """Segment and holdout populations of the owned partitions."""
    rescorer: Rescorer | None = None
    monitor: DriftMonitor | None = None

    def __post_init__(self) -> None:
        self.populations = Populations(self.config.holdout)

    def take_model(self, model: SegmentModel) -> Literal["loaded", "switched", "unchanged"]:
        """Use `model`: the first one starts scoring, a different one replaces it."""
        if self.rescorer is None or self.monitor is None:
            self.rescorer = Rescorer(model, self.config)
            self.monitor = DriftMonitor(model, self.adwin_delta)
            self.model_ready.set()
            return "loaded"
        if not self.rescorer.set_model(model):
            return "unchanged"
        self.monitor.set_model(model)
        return "switched"

    def scoring(self) -> tuple[Rescorer, DriftMonitor]:
        """The rescorer and monitor (only once `model_ready` is set)."""
        if self.rescorer is None or self.monitor is None:
            raise RuntimeError("no model loaded yet")
        return self.rescorer, self.monitor
