"""The predictive model an artifact carries: BG/NBD and Gamma-Gamma, fitted and checked.

The worker computes each customer's traits from it (`scoring.bgnbd`,
`scoring.gamma_gamma`): the probability of being alive, the purchases
expected over a horizon, their expected value, and churn risk as a percentile
of 1 - p_alive within the training population (`churn_quantiles`).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas._base import Contract

Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
QUANTILES = 101
"""`churn_quantiles` holds the 0th, 1st, ..., 100th percentile."""


class BgNbdFigures(Contract):
    """BG/NBD parameters (time in `PurchaseModel.time_unit`) and the fit's figures."""

    r: Positive
    alpha: Positive
    a: Positive
    b: Positive
    log_likelihood: FiniteFloat
    customers: Annotated[int, Field(ge=1)]
    """Customers it was fitted on (a seeded sample of at most 200,000)."""
    groups: Annotated[int, Field(ge=1)]
    """Distinct (x, t_x, T) the likelihood was evaluated on."""


class GammaGammaFigures(Contract):
    """Gamma-Gamma parameters (`v` in the event currency) and the fit's figures."""

    p: Positive
    q: Positive
    v: Positive
    log_likelihood: FiniteFloat
    customers: Annotated[int, Field(ge=2)]
    """Repeat buyers it was fitted on (of the fit's sample)."""
    frequency_spend_correlation: FiniteFloat
    """Pearson r of repeat purchases and mean spend: the model assumes about 0."""


class TraitsCheck(Contract):
    """The models refitted on the calibration period (up to T-H) against the holdout (T-H, T].

    Fader, Hardie & Lee's conditional expectations: holdout repeat purchase days
    by calibration repeat purchase days (0 to 7, 7 meaning 7 or more), actual
    and predicted means; and how well expected purchases rank "bought again".
    """

    holdout_days: Annotated[int, Field(ge=1)]
    calibration: BgNbdFigures
    customers: Annotated[int, Field(ge=1)]
    by_calibration_purchases: dict[str, tuple[FiniteFloat, FiniteFloat, int]]
    """"0" .. "7+": (actual mean, predicted mean, customers)."""
    actual_repeat_days: Annotated[int, Field(ge=0)]
    predicted_repeat_days: FiniteFloat
    expected_purchases_auc: Share | None
    """AUC of expected holdout purchases for "purchased in the holdout" (None: one class)."""


class SegmentTraits(Contract):
    """A segment's members' traits at training time, for its action card."""

    horizon_days: Annotated[int, Field(ge=1)]
    mean_p_alive: Share
    mean_expected_purchases: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    mean_expected_value: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None
    """None without a Gamma-Gamma fit."""
    high_risk: Annotated[int, Field(ge=0)]
    """Members whose churn risk is in the High band."""


class PurchaseModel(Contract):
    """BG/NBD and Gamma-Gamma for the traits, over each customer's whole purchase history."""

    time_unit: Literal["day"] = "day"
    purchase_days: Literal["utc"] = "utc"
    """A customer's purchases on one UTC day count as one purchase of their summed value."""
    bgnbd: BgNbdFigures
    gamma_gamma: GammaGammaFigures | None
    """None when fewer than two customers bought again."""
    churn_quantiles: tuple[Share, ...]
    """Percentiles 0..100 of 1 - p_alive over the training customers at T."""
    check: TraitsCheck | None = None

    @model_validator(mode="after")
    def _quantiles(self) -> PurchaseModel:
        q = self.churn_quantiles
        if len(q) != QUANTILES or any(b < a for a, b in itertools.pairwise(q)):
            raise ValueError(f"churn_quantiles must be {QUANTILES} non-decreasing shares")
        return self
