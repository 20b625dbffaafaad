"""Population histograms, drift statistics, the distance detector and the retrain policy."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.model import ReferenceDistribution, SegmentModel
from schemas.segments import FEATURE_NAMES, ChangeReason
from scoring.drift import proportions, reference_edges
from scoring.drift_monitor import DriftMonitor, FeatureDrift
from scoring.evaluation import Evaluation
from scoring.population import PopulationHistogram
from scoring.retrain_policy import RetrainPolicy, RetrainThresholds
from scoring.rfm import MICROS_PER_DAY
from scoring.standings import Standings
from tests.support.toy_model import toy_model

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


def scored(
    raw: np.ndarray,
    distances: np.ndarray | None = None,
    *,
    partition: int = 0,
    day: float = DAY0,
    before: tuple[np.ndarray, np.ndarray] | None = None,
) -> Evaluation:
    """An evaluation of `raw` rows of one partition: by events when `distances` are given
    (one centroid), by the sweep otherwise; `before` are the first rows' previous ones."""
    n = len(raw)
    as_of = np.full(n, int(day * MICROS_PER_DAY), dtype=np.int64)
    old_raw, old_as_of = before if before is not None else (np.zeros((0, 3)), np.zeros(0, np.int64))
    had = np.arange(n) < len(old_raw)
    previous = np.zeros((n, 3))
    previous[: len(old_raw)] = old_raw
    previous_as_of = np.zeros(n, dtype=np.int64)
    previous_as_of[: len(old_raw)] = old_as_of
    return Evaluation(
        reason=ChangeReason.RECENCY if distances is None else ChangeReason.EVENT,
        keys=[f"c{i}" for i in range(n)], records=[], as_of=[], vectors=[],
        partitions=[partition], owner=np.zeros(n, dtype=np.int64), raw=raw, embedded=raw,
        distances=(np.ones(n) if distances is None else distances).reshape(-1, 1),
        chosen=np.zeros(n, dtype=np.int64), membership=[], confidence=[],
        due=np.zeros(n, dtype=np.int64), as_of_micros=as_of, had=had, before=previous,
        before_as_of=previous_as_of,
    )  # fmt: skip


def observe(monitor: DriftMonitor, raw: np.ndarray, distances: np.ndarray) -> int:
    return monitor.observe(scored(raw, distances))


def clock(day: float = DAY0) -> dict[int, int]:
    return {0: int(day * MICROS_PER_DAY)}


def test_recency_is_taken_at_the_clock_and_re_evaluations_replace_contributions() -> None:
    h = PopulationHistogram([0.0, 5.0, 50.0, 500.0], [0.0, 2.0, 99.0], [0.0, 10.0, 99.0])
    micros = int(DAY0 * MICROS_PER_DAY)
    first = np.array([[1.0, 1.0, 5.0], [2.0, 3.0, 50.0]])
    h.update(0, None, None, np.full(2, micros), first)
    counts = h.counts({0: micros + 10 * MICROS_PER_DAY})  # recency now 11 and 12 days
    assert counts.recency.tolist() == [0, 2, 0] and counts.customers == 2
    assert counts.frequency.tolist() == [1, 1] and counts.monetary.tolist() == [1, 1]
    later = micros + 2 * MICROS_PER_DAY  # the first customer bought again: recency 0
    h.update(0, np.array([micros]), first[:1], np.array([later]), np.array([[0.0, 4.0, 60.0]]))
    counts = h.counts({0: later})
    assert counts.recency.tolist() == [2, 0, 0] and counts.customers == 2
    assert counts.frequency.tolist() == [0, 2] and counts.monetary.tolist() == [0, 2]
    assert h.counts({}).customers == 0  # no clock, no reading


def test_an_incrementally_kept_population_equals_one_rebuilt_from_the_final_records() -> None:
    rng = np.random.default_rng(11)
    edges = ([0.0, 3.0, 30.0, 300.0], [0.0, 1.5, 4.0, 50.0], [0.0, 20.0, 200.0, 2e4])
    kept = PopulationHistogram(*edges)
    latest: dict[int, tuple[int, list[float]]] = {}
    for _ in range(300):
        who = rng.choice(50, size=8, replace=False)
        as_of = (DAY0 + rng.uniform(0, 400, size=8)) * MICROS_PER_DAY
        raw = np.column_stack(
            [rng.uniform(0, 200, 8), rng.integers(0, 9, 8), rng.uniform(0, 900, 8)]
        )
        had = [c for c in who if c in latest]
        before = np.array([latest[c][1] for c in had]).reshape(-1, 3)
        before_as_of = np.array([latest[c][0] for c in had], dtype=np.int64)
        kept.update(0, before_as_of, before, as_of.astype(np.int64), raw)
        for c, a, r in zip(who, as_of.astype(np.int64), raw, strict=True):
            latest[int(c)] = (int(a), r.tolist())
    rebuilt = PopulationHistogram(*edges)
    rebuilt.rebuild(
        0,
        np.array([a for a, _ in latest.values()], dtype=np.int64),
        np.array([v for _, v in latest.values()], dtype=np.float64),
    )
    at = {0: int((DAY0 + 500) * MICROS_PER_DAY)}
    for a, b in zip(
        dataclass_values(kept.counts(at)), dataclass_values(rebuilt.counts(at)), strict=True
    ):
        assert np.array_equal(a, b)
    kept.drop(0)
    assert kept.counts(at).customers == 0


def dataclass_values(counts: object) -> list[object]:
    return [getattr(counts, f) for f in ("recency", "frequency", "monetary", "customers")]


def test_live_data_like_the_reference_shows_no_drift_and_a_recency_shift_does() -> None:
    rng = np.random.default_rng(7)
    monitor = DriftMonitor(model_of(population(rng, 20_000)))
    live = population(rng, 10_000)
    monitor.observe(scored(live))
    steady = monitor.feature_drift(clock())
    assert steady.customers == 10_000
    assert max(steady.psi.values()) < 0.05
    assert max(steady.ks.values()) < 0.05

    as_of = np.full(len(live), int(DAY0 * MICROS_PER_DAY), dtype=np.int64)
    lapsed = population(rng, 10_000, recency_scale=120.0)  # the same customers, lapsing
    monitor.observe(scored(lapsed, before=(live, as_of)))
    shifted = monitor.feature_drift(clock())
    assert shifted.customers == 10_000
    assert shifted.psi["recency_days"] > 0.25
    assert shifted.ks["recency_days"] > steady.ks["recency_days"]
    assert shifted.psi["frequency"] < 0.05


def test_time_passing_without_events_shows_as_recency_drift() -> None:
    rng = np.random.default_rng(8)
    sample = population(rng, 20_000)
    monitor = DriftMonitor(model_of(sample))
    monitor.observe(scored(sample))
    assert monitor.feature_drift(clock()).psi["recency_days"] < 0.01
    assert monitor.feature_drift(clock(DAY0 + 90)).psi["recency_days"] > 0.25


def test_the_detector_stays_quiet_on_stable_distances_and_fires_when_they_grow() -> None:
    rng = np.random.default_rng(3)
    monitor = DriftMonitor(model_of(population(rng, 5_000)))
    assert observe(monitor, population(rng, 20_000), np.abs(rng.normal(1.0, 0.3, 20_000))) == 0
    found = observe(monitor, population(rng, 20_000), np.abs(rng.normal(1.6, 0.3, 20_000)))
    assert found >= 1
    assert monitor.detections == found


def test_a_new_model_starts_the_population_afresh_until_it_is_rebuilt() -> None:
    rng = np.random.default_rng(1)
    sample = population(rng, 2_000)
    monitor = DriftMonitor(model_of(sample))
    observe(monitor, sample, np.ones(len(sample)))
    monitor.set_model(model_of(sample))
    assert monitor.feature_drift(clock()).customers == 0
    micros = int(DAY0 * MICROS_PER_DAY)
    monitor.rebuild(0, standings_of(sample, micros))
    assert monitor.feature_drift(clock()).customers == 2_000


def standings_of(sample: np.ndarray, micros: int) -> Standings:
    n = len(sample)
    return Standings(
        [f"c{i}" for i in range(n)],
        np.zeros(n, dtype=np.int64),
        np.ones(n, dtype=np.int64),
        np.full(n, micros, dtype=np.int64),
        sample.astype(np.float64),
    )


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


def test_customers_picked_by_the_sweep_feed_the_population_but_not_the_detector() -> None:
    rng = np.random.default_rng(4)
    monitor = DriftMonitor(model_of(population(rng, 2_000)))
    raw = population(rng, 5_000)
    assert monitor.observe(scored(raw, None)) == 0
    assert monitor.feature_drift(clock()).customers == 5_000
    assert monitor.detections == 0
