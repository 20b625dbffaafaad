"""Action cards and the trainer's new validation, on data whose answer is known."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from offline.action_cards import behaviour, interacts, lever, pareto, values
from offline.customer_table import Horizon, customer_table
from offline.event_validation import EVENT_TYPE
from schemas import load_segment_model


def test_refund_rate_and_channel_mix_per_segment() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    events = pl.DataFrame(
        {"customer_id": ["a", "a", "a", "b", "b"],
         "type": ["purchase", "purchase", "refund", "purchase", "session"],
         "occurred_at": [at] * 5, "amount": [10.0, 5.0, 5.0, 7.0, None],
         "channel": ["web", "store", None, "web", "app"]}
    )  # fmt: skip
    events = events.with_columns(
        pl.Series("event_id", ["e1", "e2", "e3", "e4", "e5"]),
        pl.col("type").cast(EVENT_TYPE),
        pl.col("occurred_at").dt.cast_time_unit("us"),
    )
    table = customer_table([events.lazy()], Horizon(at))
    refunds, mix = behaviour(table, np.asarray([0, 1]))
    assert refunds == {0: 0.5, 1: 0.0}
    assert mix == {0: {"web": 0.5, "store": 0.5}, 1: {"web": 1.0}}
    assert interacts(mix[1]) == "mostly through web (100% of purchases)"
    assert interacts({}) == "no channel recorded on their purchases"


def test_the_lever_and_the_value_follow_the_rule_table() -> None:
    lapsing_big_spenders = {"recency_days": 1.2, "frequency": 0.0, "monetary": 0.8}
    assert lever(lapsing_big_spenders).startswith("win-back")
    assert values(lapsing_big_spenders).startswith("have gone the longest without buying")
    longer_gone = {"recency_days": 1.5, "frequency": -0.5, "monetary": -0.4}
    assert values(lapsing_big_spenders, [lapsing_big_spenders, longer_gone]).startswith(
        "have not bought for a while"
    )
    newcomers = {"recency_days": -1.0, "frequency": -0.2, "monetary": 0.0}
    assert lever(newcomers).startswith("onboarding")
    assert lever({"recency_days": 0.0, "frequency": 0.0, "monetary": 0.0}).startswith("nurture")
    assert pareto({0: 0.85, 1: 0.1, 2: 0.05}) == {0}


def test_the_cdnow_artifact_carries_the_whole_validation(trained_cdnow: bytes) -> None:
    model = load_segment_model(trained_cdnow)
    v = model.validation
    assert model.schema_version == 4
    assert 0.5 < v.predictive["segment_auc"] <= 1 and 0.5 < v.predictive["rfm_auc"] <= 1
    assert set(v.churn_by_segment) == {str(s.segment_id) for s in model.segments}
    assert v.cv_ari_mean is not None and v.cv_ari_mean > 0.9
    assert "monetary noise 10%" in v.sensitivity and v.fragile is False
    assert set(v.algorithms) == {"kmeans", "gaussian_mixture", "ward"} and v.algorithm_choice
    assert len(v.feature_correlation) == 3
    for segment in model.segments:
        p = segment.profile
        assert p is not None and p.lever and p.values and p.interacts
        assert p.channel_mix  # converted CDNOW rows carry channel "cdnow"
        assert p.traits is not None and 0 < p.traits.mean_p_alive <= 1
    # "what they value" never calls a segment the most of something another has more of
    spenders = [s for s in model.segments if s.profile and "spend the most" in s.profile.values]
    assert len(spenders) <= 1
