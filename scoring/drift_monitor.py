"""Drift of live customers away from the active model.

Three signals, all against what the model was trained on:

- feature drift: PSI and binned Kolmogorov-Smirnov distance of each feature,
  live (a `FeatureWindow` of recently scored customers) against the model's
  reference distribution;
- distance drift: River's ADWIN detector on the distance of each customer
  scored on its own event to the centroid it was assigned, in standardised
  units; a detection means buying customers sit further from (or closer to)
  their segments than they did;
- centroid drift: how far the online centroids moved from the baseline (read
  from the rescorer's shards, see `OnlineCentroids.drift`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from river.drift import ADWIN

from schemas.model import SegmentModel
from schemas.segments import FEATURE_NAMES
from scoring.drift import bin_counts, binned_ks, psi
from scoring.feature_window import FeatureWindow

FloatArray = NDArray[np.float64]
DEFAULT_WINDOW = 100_000
DEFAULT_ADWIN_DELTA = 0.002


@dataclass(frozen=True)
class FeatureDrift:
    """PSI and KS of every feature over `customers` live customers."""

    psi: dict[str, float]
    ks: dict[str, float]
    customers: int


class DriftMonitor:
    """Feature and distance drift for the customers one worker scores."""

    def __init__(
        self,
        model: SegmentModel,
        window: int = DEFAULT_WINDOW,
        adwin_delta: float = DEFAULT_ADWIN_DELTA,
    ) -> None:
        self.window = FeatureWindow(window, model.features.window_days)
        self.adwin_delta = adwin_delta
        self.detections = 0
        self._detector = ADWIN(delta=adwin_delta)  # type: ignore[no-untyped-call]
        self.set_model(model)

    def set_model(self, model: SegmentModel) -> None:
        """Compare against a new model from now on: the window and detector start afresh."""
        self.reference = {
            name: (model.reference[name].bin_edges, model.reference[name].proportions)
            for name in FEATURE_NAMES
        }
        self.window = FeatureWindow(self.window.capacity, model.features.window_days)
        self._detector = ADWIN(delta=self.adwin_delta)  # type: ignore[no-untyped-call]

    def observe(
        self,
        partition: int,
        keys: list[str],
        raw: FloatArray,
        as_of_days: FloatArray,
        distances: FloatArray | None,
    ) -> int:
        """Take scored customers (raw RFM at `as_of_days`); return the new detections.

        Pass `distances` only for customers scored because of their own events:
        the sweep picks customers near a segment boundary, whose distances
        differ by construction, and would make the detector alarm every day.
        """
        if not keys:
            return 0
        last_purchase = as_of_days - raw[:, 0]
        self.window.update(partition, keys, np.column_stack([last_purchase, raw[:, 1:]]))
        if distances is None:
            return 0
        found = 0
        detector = self._detector
        for distance in distances.tolist():
            detector.update(distance)  # type: ignore[no-untyped-call]
            if detector.drift_detected:
                found += 1
        self.detections += found
        return found

    def drop_partition(self, partition: int) -> None:
        """Forget a partition this worker gave up."""
        self.window.drop_partition(partition)

    def feature_drift(self, watermark_days: Mapping[int, float]) -> FeatureDrift:
        """PSI and KS per feature of the window at the current watermarks."""
        live = self.window.features(watermark_days)
        psis: dict[str, float] = {}
        kss: dict[str, float] = {}
        for column, name in enumerate(FEATURE_NAMES):
            edges, expected = self.reference[name]
            counts = bin_counts(live[:, column], edges)
            total = counts.sum()
            if total == 0:
                continue
            actual = (counts / total).tolist()
            psis[name] = psi(expected, actual)
            kss[name] = binned_ks(expected, actual)
        return FeatureDrift(psis, kss, len(live))
