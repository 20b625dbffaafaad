"""Feature window, drift statistics, the distance detector and the retrain policy."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.model import ReferenceDistribution, SegmentModel
from schemas.segments import FEATURE_NAMES
from scoring.drift import proportions, reference_edges
from scoring.drift_monitor import DriftMonitor, FeatureDrift
from scoring.feature_window import FeatureWindow
from scoring.retrain_policy import RetrainPolicy, RetrainThresholds
from tests.unit.toy_model import toy_model

DAY0 = 20_000.0  # days since the epoch


def population(rng: np.random.Generator, n: int, recency_scale: float = 40.0) -> np.ndarray:
    recency = np.minimum(rng.exponential(recency_scale, n), 364.0)
    frequency = 1.0 + rng.poisson(3.0, n)
    monetary = frequency * rng.lognormal(3.5, 0.6, n)
    return np.column_stack([recency, frequency, monetary])


def model_of(sample: np.ndarray) -> SegmentModel:
    reference = {}
    for i, name in enumerate(FEATURE_NAMES):
        edges = reference_edges(sample[:, i])
        reference[name] = ReferenceDistribution(
            bin_edges=tuple(edges), proportions=tuple(proportions(sample[:, i], edges))
        )
    return toy_model().model_copy(update={"reference": reference})


def observe(monitor: DriftMonitor, raw: np.ndarray, distances: np.ndarray, start: int = 0) -> int:
    keys = [f"c{start + i}" for i in range(len(raw))]
    return monitor.observe(0, keys, raw, np.full(len(raw), DAY0), distances)


def test_the_window_keeps_the_latest_scoring_of_each_customer_and_evicts_the_oldest() -> None:
    window = FeatureWindow(capacity=3, window_days=365)
    window.update(0, ["a", "b", "c"], np.array([[DAY0, 1, 10], [DAY0, 2, 20], [DAY0, 3, 30]]))
    window.update(0, ["a"], np.array([[DAY0 + 5, 4, 40]]))  # "a" again: now the newest
    window.update(1, ["d"], np.array([[DAY0, 5, 50]]))  # evicts "b", scored longest ago
    got = window.features({0: DAY0 + 10, 1: DAY0 + 2})
    assert sorted(map(tuple, got.tolist())) == [
        (2.0, 5.0, 50.0),
        (5.0, 4.0, 40.0),
        (10.0, 3.0, 30.0),
    ]
    window.drop_partition(0)
    assert window.features({0: DAY0 + 10, 1: DAY0 + 2}).tolist() == [[2.0, 5.0, 50.0]]


def test_customers_outside_the_rfm_window_or_without_a_clock_are_left_out() -> None:
    window = FeatureWindow(capacity=10, window_days=30)
    window.update(0, ["old", "new"], np.array([[DAY0, 1, 1], [DAY0 + 20, 1, 1]]))
    window.update(1, ["elsewhere"], np.array([[DAY0, 1, 1]]))
    assert window.features({0: DAY0 + 40}).tolist() == [[20.0, 1.0, 1.0]]


def test_live_data_like_the_reference_shows_no_drift_and_a_recency_shift_does() -> None:
    rng = np.random.default_rng(7)
    monitor = DriftMonitor(model_of(population(rng, 20_000)), window=10_000)
    observe(monitor, population(rng, 10_000), rng.normal(1.0, 0.2, 10_000))
    steady = monitor.feature_drift({0: DAY0})
    assert steady.customers == 10_000
    assert max(steady.psi.values()) < 0.05
    assert max(steady.ks.values()) < 0.05

    lapsed = population(rng, 10_000, recency_scale=120.0)  # replaces the whole window
    observe(monitor, lapsed, rng.normal(1.0, 0.2, 10_000), start=10_000)
    shifted = monitor.feature_drift({0: DAY0})
    assert shifted.psi["recency_days"] > 0.25
    assert shifted.ks["recency_days"] > steady.ks["recency_days"]
    assert shifted.psi["frequency"] < 0.05


def test_the_detector_stays_quiet_on_stable_distances_and_fires_when_they_grow() -> None:
    rng = np.random.default_rng(3)
    monitor = DriftMonitor(model_of(population(rng, 5_000)))
    assert observe(monitor, population(rng, 20_000), np.abs(rng.normal(1.0, 0.3, 20_000))) == 0
    found = observe(
        monitor, population(rng, 20_000), np.abs(rng.normal(1.6, 0.3, 20_000)), start=20_000
    )
    assert found >= 1
    assert monitor.detections == found


def test_a_new_model_starts_the_window_afresh() -> None:
    rng = np.random.default_rng(1)
    sample = population(rng, 2_000)
    monitor = DriftMonitor(model_of(sample))
    observe(monitor, sample, np.ones(len(sample)))
    monitor.set_model(model_of(sample))
    assert monitor.feature_drift({0: DAY0}).customers == 0


def drift(psi: float, customers: int = 1_000) -> FeatureDrift:
    return FeatureDrift({"recency_days": psi, "frequency": 0.01}, {"recency_days": 0.1}, customers)


def test_psi_must_stay_high_for_the_sustain_period() -> None:
    policy = RetrainPolicy(RetrainThresholds(psi_sustain_seconds=60, cooldown_seconds=600))
    assert policy.evaluate(0, drift(0.4), {}, 0) is None
    assert policy.evaluate(30, drift(0.1), {}, 0) is None  # dipped: the clock restarts
    assert policy.evaluate(80, drift(0.4), {}, 0) is None
    evidence = policy.evaluate(141, drift(0.4), {}, 0)
    assert evidence is not None
    assert evidence.triggers == ("feature_psi:recency_days",)
    assert evidence.feature_psi["recency_days"] == 0.4
    assert evidence.thresholds["psi"] == 0.25
    assert evidence.scored_customers == 1_000


def test_one_request_per_cooldown_whatever_fires() -> None:
    policy = RetrainPolicy(RetrainThresholds(psi_sustain_seconds=0, cooldown_seconds=600))
    assert policy.evaluate(0, drift(0.5), {}, 0) is not None
    assert policy.evaluate(10, drift(0.5), {"Champions": 2.0}, 9) is None
    again = policy.evaluate(601, drift(0.5), {"Champions": 2.0}, 9)
    assert again is not None
    assert again.triggers == (
        "feature_psi:recency_days", "centroid_drift:Champions", "detector_alarms",
    )  # fmt: skip


def test_centroid_drift_and_detector_alarms_trigger_on_their_own() -> None:
    policy = RetrainPolicy(RetrainThresholds(detector_alarms=3, cooldown_seconds=0))
    assert policy.evaluate(0, drift(0.0), {"Regular": 0.4}, 0) is None
    assert policy.evaluate(1, drift(0.0), {"Regular": 0.6}, 0) is not None
    assert policy.evaluate(2, drift(0.0), {}, 2) is None
    alarms = policy.evaluate(3, drift(0.0), {}, 3)
    assert alarms is not None and alarms.detector_alarms == 3
    assert policy.evaluate(4, drift(0.0), {}, 4) is None  # counted from the last request


def test_too_few_customers_are_no_evidence() -> None:
    policy = RetrainPolicy(RetrainThresholds(psi_sustain_seconds=0, min_customers=500))
    assert policy.evaluate(0, drift(0.9, customers=499), {}, 0) is None


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        RetrainThresholds(psi=0)


def test_customers_picked_by_the_sweep_feed_the_window_but_not_the_detector() -> None:
    rng = np.random.default_rng(4)
    monitor = DriftMonitor(model_of(population(rng, 2_000)))
    raw = population(rng, 5_000)
    keys = [f"s{i}" for i in range(len(raw))]
    assert monitor.observe(0, keys, raw, np.full(len(raw), DAY0), None) == 0
    assert monitor.feature_drift({0: DAY0}).customers == 5_000
    assert monitor.detections == 0
