"""The artifact's predictive model: fitted through the trainer's own customer table,
with its holdout check and churn percentiles (the paper's values: `test_clv_fit.py`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from offline.cdnow import convert_cdnow
from offline.customer_table import Horizon, customer_table
from offline.traits import purchase_model
from schemas.model import load_segment_model

CDNOW = Path(__file__).parents[1] / "data" / "cdnow_sample.csv"


@pytest.fixture(scope="module")
def events() -> pl.LazyFrame:
    return convert_cdnow(CDNOW).lazy()


def test_the_model_carries_its_holdout_check(events: pl.LazyFrame) -> None:
    as_of = datetime(1998, 6, 30, 12, tzinfo=UTC)
    horizon = Horizon(as_of, 365, datetime(1998, 4, 1, 12, tzinfo=UTC))
    traits = purchase_model(customer_table([events], horizon), horizon)
    assert traits is not None and traits.check is not None and traits.gamma_gamma is not None
    check = traits.check
    assert check.holdout_days == 90
    assert list(check.by_calibration_purchases) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(n for _, _, n in check.by_calibration_purchases.values()) == check.customers
    assert check.expected_purchases_auc is not None and check.expected_purchases_auc > 0.75
    # Within a third of what happened, over a quarter of a year of new data.
    assert check.predicted_repeat_days == pytest.approx(check.actual_repeat_days, rel=0.35)
    assert traits.churn_quantiles[0] == 0.0  # one-time buyers: never seen leaving
    assert traits.churn_quantiles[-1] <= 1.0


def test_the_trained_artifact_carries_traits_and_older_ones_still_load(
    trained_cdnow: bytes,
) -> None:
    model = load_segment_model(trained_cdnow)
    assert model.schema_version == 4 and model.traits is not None
    older = json.loads(trained_cdnow)
    older.pop("traits")
    older["schema_version"] = 3
    older.pop("signature", None)
    assert load_segment_model(json.dumps(older).encode()).traits is None
