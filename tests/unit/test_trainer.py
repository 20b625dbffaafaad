"""Training: determinism, names, stable identity across retrains, validation figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from offline.errors import InputError
from offline.event_validation import Rejections
from offline.events_io import EventLog
from offline.naming import PROTOTYPES, name_segments, percentile_scores
from offline.synthetic import synthetic_events
from offline.trainer import TrainConfig, TrainResult, train
from schemas import load_segment_model
from tests.support.training import FAST, log, trained


def artifact_without_time(result: TrainResult) -> dict[str, object]:
    data = json.loads(result.model.model_dump_json())
    data.pop("created_at")
    return data


def test_same_input_and_seed_give_the_same_artifact() -> None:
    again = train(log(), FAST)
    assert artifact_without_time(again) == artifact_without_time(trained())


def test_artifact_is_complete_and_loads() -> None:
    model = load_segment_model(trained().model.model_dump_json())
    k = len(model.segments)
    assert 3 <= k <= 7
    assert sorted(s.segment_id for s in model.segments) == list(range(k))
    assert len({s.name for s in model.segments}) == k
    assert all(s.name in PROTOTYPES for s in model.segments)
    assert sum(s.profile.size for s in model.segments if s.profile) == model.n_customers
    assert all(s.profile and s.profile.share >= 0.02 for s in model.segments)
    v = model.validation
    assert v.silhouette is not None and -1 <= v.silhouette <= 1
    assert v.bootstrap_ari is not None and v.bootstrap_ari > 0.5
    assert v.holdout_ari is not None and v.holdout_changed_share is not None
    assert set(v.segment_jaccard) == {str(s.segment_id) for s in model.segments}
    assert set(v.kpi_pvalues) == {"recency_days", "frequency", "monetary", "order_value"}
    assert set(v.k_selection) == {str(k) for k in range(3, 8)}
    assert model.features.window_days == 365
    assert "floored at 0" in model.features.definition
    assert model.parameters["seed"] == 0


def test_segment_zero_is_the_most_valuable() -> None:
    model = trained().model
    by_id = {s.segment_id: s for s in model.segments}
    revenue = [by_id[i].profile.revenue_share for i in sorted(by_id) if by_id[i].profile]
    assert revenue[0] == max(revenue)


def test_segments_recover_personas_better_than_chance() -> None:
    _, truth = synthetic_events(3000, seed=1)
    result = trained()
    joined = result.features.select("customer_id").join(truth, on="customer_id", how="left")
    ari = adjusted_rand_score(joined["persona"].to_list(), result.segment_ids)
    assert ari > 0.2


def test_retrain_keeps_ids_of_the_same_groups() -> None:
    first = trained()
    later = train(
        log(3000, seed=2),
        TrainConfig(bootstrap_resamples=3, n_init=2, version=2, k=len(first.model.segments)),
        first.model,
    )
    assert later.model.version == 2
    assert later.model.parameters["previous_version"] == 1
    old = {s.segment_id: s.name for s in first.model.segments}
    new = {s.segment_id: s.name for s in later.model.segments}
    # the same persona mix, another sample: every segment keeps its id and name
    assert new == old


def test_retrain_with_more_segments_gives_new_ids_beyond_the_old_ones() -> None:
    first = trained()
    k_old = len(first.model.segments)
    later = train(
        log(), TrainConfig(bootstrap_resamples=2, n_init=2, version=2, k=k_old + 2), first.model
    )
    ids = sorted(s.segment_id for s in later.model.segments)
    assert len(ids) == k_old + 2
    assert max(ids) >= k_old + 1
    assert later.model.parameters["max_segment_id"] == max(ids)


def test_fixed_k_is_respected() -> None:
    assert len(train(log(), TrainConfig(k=4, bootstrap_resamples=2, n_init=1)).model.segments) == 4


def test_too_few_customers_and_as_of_before_every_event() -> None:
    events, _ = synthetic_events(3, seed=0)
    tiny = EventLog(events, Rejections(), ["tiny"])
    with pytest.raises(InputError, match="too few for 3 segments"):
        train(tiny, FAST)
    first = log().frame["occurred_at"].min()
    with pytest.raises(InputError, match="is before every event"):
        train(log(), TrainConfig(as_of=first - timedelta(days=1)))


def test_as_of_in_the_past_ignores_later_events() -> None:
    as_of = datetime(2024, 6, 30, tzinfo=UTC)
    result = train(log(), TrainConfig(as_of=as_of, bootstrap_resamples=2, n_init=1, holdout_days=0))
    assert result.model.as_of == as_of
    assert result.model.training_end <= as_of
    assert result.holdout is None
    assert result.features["last_purchase"].max() <= as_of


def test_names_are_unique_even_for_similar_scores() -> None:
    scores = np.array([[5.0, 5.0, 5.0], [4.9, 5.0, 4.9], [5.0, 4.9, 5.0], [1.0, 1.0, 1.0]])
    names = name_segments(scores)
    assert len(set(names)) == 4
    assert names[3] == "Lost"
    many = name_segments(np.tile([[3.0, 3.0, 3.0]], (13, 1)))
    assert len(set(many)) == 13


def test_percentile_scores_put_ties_at_the_bottom_to_one() -> None:
    population = np.array([[10.0, 0, 0], [20.0, 0, 0], [30.0, 1, 5], [40.0, 2, 9]])
    scores = percentile_scores(population, population)
    assert scores[0, 1] == 1.0 and scores[1, 1] == 1.0  # frequency 0: bottom score
    assert scores[0, 0] > scores[3, 0]  # shorter recency scores higher
