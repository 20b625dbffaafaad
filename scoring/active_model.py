"""A validated `SegmentModel` with what scoring needs precomputed."""

from __future__ import annotations

from schemas.model import SegmentModel
from scoring.space import ModelSpace
from scoring.traits import TraitModel


class ActiveModel:
    """A validated `SegmentModel` with what scoring needs precomputed."""

    def __init__(self, model: SegmentModel) -> None:
        self.model = model
        self.version = model.version
        self.space = ModelSpace.from_model(model)
        self.names = tuple(s.name for s in model.segments)
        self.index_of = {s.segment_id: i for i, s in enumerate(model.segments)}
        self.window_days = model.features.window_days
        self.temperature = model.temperature
        self.membership_keys = tuple(str(s.segment_id) for s in model.segments)
        self.traits = None if model.traits is None else TraitModel.of(model.traits)
        """The predictive model for live traits (None: the artifact has none)."""
