"""What follows a training run: sign, store, report, promote, publish.

One workflow for `rescorer train`, `rescorer retrain` and the demo, so that
each stores the same kind of artifact (signed whenever a signing key is
configured) and reports it the same way. Promotion is the caller's decision
(train promotes the first model or on request; retrain only through its
quality gates); `promote` and `publish` then do it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from offline.event_validation import Rejections
from offline.kafka_io import publish_model, signed
from offline.trainer import TrainResult
from schemas.model import SegmentModel
from schemas.registry import ModelRegistry
from schemas.settings import RescorerSettings
from scoring.holdout import HoldoutPolicy


@dataclass(frozen=True)
class Stored:
    """A trained model as the registry holds it, and its report."""

    model: SegmentModel
    """Signed with the configured key (unchanged without one)."""
    path: Path
    report: Path | None


def store(
    settings: RescorerSettings,
    registry: ModelRegistry,
    result: TrainResult,
    rejections: Rejections,
    report_dir: Path | None = None,
) -> Stored:
    """Sign the trained model, save it in the registry, and write its report if asked."""
    model = signed(settings, result.model)
    path = registry.save(model)
    page = None
    if report_dir is not None:
        from offline.report import write_report

        policy = HoldoutPolicy.from_settings(settings)
        page = write_report(result, rejections, report_dir, policy)
    return Stored(model, path, page)


def promote(registry: ModelRegistry, model: SegmentModel, *, always: bool) -> bool:
    """Make `model` the active one when `always`, or when no model is active yet."""
    if always or registry.active_version() is None:
        registry.promote(model.version)
        return True
    return False


def publish_active(settings: RescorerSettings, registry: ModelRegistry) -> SegmentModel:
    """Publish the registry's active model to the models topic (workers pick it up)."""
    active = registry.active()
    if active is None:
        raise RuntimeError("no active model to publish")
    publish_model(settings, active)
    return active
