"""Drift of live customers away from the active model.

Three signals, all against what the model was trained on:

- feature drift: PSI and binned Kolmogorov-Smirnov distance of each feature
  over the whole owned population (a `PopulationHistogram`, recency taken at
  each partition's clock) against the model's reference distribution;
- distance drift: River's ADWIN detector on the distance of each customer
  scored on its own event to the centroid it was assigned, in standardised
  units; a detection means buying customers sit further from (or closer to)
  their segments than they did;
- centroid drift: how far the online centroids moved from the baseline (read
  from the rescorer's shards, see `OnlineCentroids.drift`).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.model import SegmentModel
from schemas.segments import FEATURE_NAMES
from scoring.drift import binned_ks, psi
from scoring.evaluation import Evaluation
from scoring.population import PopulationHistogram
from scoring.standings import Standings

DEFAULT_ADWIN_DELTA = 0.002
MAX_PENDING_DISTANCES = 200_000
"""Distances kept for the detector while River loads; past this, they wait for River."""
_LOADING = threading.Event()
_LOADED = threading.Event()


def preload_detectors() -> None:
    """Load River's drift detectors in a background thread (see `DriftMonitor`)."""

    def load() -> None:
        try:
            importlib.import_module("river.drift")
        finally:
            _LOADED.set()

    if not _LOADING.is_set():
        _LOADING.set()
        threading.Thread(target=load, name="load-river-drift", daemon=True).start()


@dataclass(frozen=True)
class FeatureDrift:
    """PSI and KS of every feature over `customers` live customers."""

    psi: dict[str, float]
    ks: dict[str, float]
    customers: int


class DriftMonitor:
    """Feature and distance drift for the customers one worker owns."""

    def __init__(self, model: SegmentModel, adwin_delta: float = DEFAULT_ADWIN_DELTA) -> None:
        self.adwin_delta = adwin_delta
        self.detections = 0
        self.set_model(model)

    def set_model(self, model: SegmentModel) -> None:
        """Compare against a new model from now on.

        Its reference bins differ, so the population must be rebuilt (`rebuild`
        per owned partition); the distance detector starts afresh.
        """
        self.reference = {
            name: (model.reference[name].bin_edges, model.reference[name].proportions)
            for name in FEATURE_NAMES
        }
        edges = [self.reference[name][0] for name in FEATURE_NAMES]
        self.population = PopulationHistogram(*edges)
        self._detector: Any = None
        self._pending: list[float] = []

    def observe(self, evaluation: Evaluation) -> int:
        """Take one evaluation's customers; return the new distance detections.

        Each partition's population swaps the customers' previous contribution
        for the new one. Only customers scored because of their own events feed
        the detector: the sweep picks customers near a segment boundary, whose
        distances differ by construction, and would make it alarm every day.
        """
        masks = [evaluation.rows_of(slot) for slot in range(len(evaluation.partitions))]
        for partition, mask in zip(evaluation.partitions, masks, strict=True):
            kept = mask & evaluation.had
            self.population.update(
                partition, evaluation.before_as_of[kept], evaluation.before[kept],
                evaluation.as_of_micros[mask], evaluation.raw[mask],
            )  # fmt: skip
        if not evaluation.by_event:
            return 0
        distances = evaluation.assigned_distances
        for mask in masks:
            self._pending.extend(distances[mask].tolist())
        detector = self._ready_detector()
        if detector is None:
            return 0
        found = 0
        for distance in self._pending:
            detector.update(distance)
            if detector.drift_detected:
                found += 1
        self._pending.clear()
        self.detections += found
        return found

    def _ready_detector(self) -> Any:
        """The ADWIN detector, once River's drift package is loaded (None until then).

        River's drift package imports ``scipy.stats`` (and scikit-learn, when
        installed): a second or more. A worker loads it in the background once
        it is serving (`preload_detectors`); distances observed meanwhile wait
        here, in order, and are fed to the detector the moment it exists.
        Without a background load, or with too many waiting, it is loaded now.
        """
        if self._detector is None:
            loading = _LOADING.is_set() and not _LOADED.is_set()
            if loading and len(self._pending) < MAX_PENDING_DISTANCES:
                return None
            from river.drift import ADWIN

            self._detector = ADWIN(delta=self.adwin_delta)  # type: ignore[no-untyped-call]
        return self._detector

    def rebuild(self, partition: int, standings: Standings) -> None:
        """A partition's population from where its customers stand (after a (re)assignment)."""
        evaluated = standings.evaluated
        self.population.rebuild(partition, standings.as_of[evaluated], standings.vectors[evaluated])

    def drop_partition(self, partition: int) -> None:
        """Forget a partition this worker gave up."""
        self.population.drop(partition)

    def feature_drift(self, clocks: Mapping[int, int]) -> FeatureDrift:
        """PSI and KS per feature over the population, recency at each partition's clock."""
        counts = self.population.counts(clocks)
        psis: dict[str, float] = {}
        kss: dict[str, float] = {}
        if counts.customers == 0:
            return FeatureDrift(psis, kss, 0)
        for name, binned in zip(
            FEATURE_NAMES, (counts.recency, counts.frequency, counts.monetary), strict=True
        ):
            _, expected = self.reference[name]
            actual = (binned / max(1, int(binned.sum()))).tolist()
            psis[name] = psi(expected, actual)
            kss[name] = binned_ks(expected, actual)
        return FeatureDrift(psis, kss, counts.customers)
