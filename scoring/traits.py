"""A customer's predictive traits from the artifact's predictive model.

- ``p_alive``: BG/NBD's probability that the customer has not dropped out;
- ``expected_purchases``: purchase days expected over the horizon;
- ``expected_value``: those times Gamma-Gamma's expected spend per purchase
  (the population's mean spend for a customer without a repeat purchase);
- ``churn_risk``: 0-100, the percentile of 1 - p_alive within the training
  population (a customer at 80 is at more risk than 80% of it), in bands
  Low / Medium / High at `BandThresholds` (Braze's 50 and 75 by default).

Vectorised over customers: the trainer's action cards and the worker compute
them the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from schemas.segments import RiskBand
from schemas.traits import PurchaseModel
from scoring import bgnbd, gamma_gamma
from scoring.bgnbd import BgNbdParams
from scoring.gamma_gamma import GammaGammaParams

Array = NDArray[np.float64]
DEFAULT_HORIZON_DAYS = 90


BAND_ORDER = (RiskBand.LOW, RiskBand.MEDIUM, RiskBand.HIGH)
"""Bands from least to most at risk; a band's code is its index here."""


@dataclass(frozen=True)
class BandThresholds:
    """Churn risk at or above `medium` is Medium, at or above `high` High."""

    medium: float = 50.0
    high: float = 75.0

    def band(self, risk: ArrayLike) -> NDArray[np.str_]:
        """The band of each churn risk.

        >>> BandThresholds().band([10.0, 50.0, 74.9, 75.0]).tolist()
        ['low', 'medium', 'medium', 'high']
        """
        r = np.asarray(risk, dtype=np.float64)
        out = np.where(r >= self.high, RiskBand.HIGH.value, RiskBand.MEDIUM.value)
        return np.where(r < self.medium, RiskBand.LOW.value, out)

    def __post_init__(self) -> None:
        if not 0.0 < self.medium < self.high <= 100.0:
            raise ValueError(
                f"band thresholds must satisfy 0 < medium < high <= 100, "
                f"got {self.medium} and {self.high}"
            )

    def codes(self, risk: ArrayLike) -> NDArray[np.int64]:
        """Each churn risk's band as its code (`BAND_ORDER`).

        >>> BandThresholds().codes([10.0, 50.0, 75.0]).tolist()
        [0, 1, 2]
        """
        r = np.asarray(risk, dtype=np.float64)
        return (r >= self.medium).astype(np.int64) + (r >= self.high).astype(np.int64)

    def above(self, code: int) -> float | None:
        """The churn risk at which a customer leaves band `code` upwards (None: the top)."""
        return (self.medium, self.high, None)[code]


@dataclass(frozen=True)
class TraitModel:
    """What the traits need of the artifact: both models and the churn percentiles."""

    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams | None
    churn_quantiles: tuple[float, ...]
    """1 - p_alive at percentiles 0, 1, ..., 100 of the training population."""

    @classmethod
    def of(cls, artifact: PurchaseModel) -> TraitModel:
        """The artifact's predictive model, as the computation takes it."""
        b, g = artifact.bgnbd, artifact.gamma_gamma
        spend = None if g is None else GammaGammaParams(g.p, g.q, g.v)
        return cls(BgNbdParams(b.r, b.alpha, b.a, b.b), spend, artifact.churn_quantiles)


@dataclass(frozen=True)
class Traits:
    """Each customer's traits, as arrays in the order of the customers given."""

    p_alive: Array
    expected_purchases: Array
    expected_value: Array
    churn_risk: Array


def churn_risk(quantiles: ArrayLike, churn: ArrayLike) -> Array:
    """The percentile (0-100) of each 1 - p_alive within the training population.

    The highest percentile whose quantile the value reaches, so ties with the
    population's many zeros (one-time buyers) all sit at the same low risk.

    >>> churn_risk([0.0, 0.0, 0.5, 0.9, 1.0], [0.0, 0.6, 1.0]).tolist()  # 5 quantiles: 0,25,..
    [25.0, 50.0, 100.0]
    """
    q = np.asarray(quantiles, dtype=np.float64)
    c = np.asarray(churn, dtype=np.float64)
    step = 100.0 / (len(q) - 1)
    index = np.searchsorted(q, c, side="right") - 1
    return np.clip(index, 0, len(q) - 1).astype(np.float64) * step


def crossing_age(
    model: TraitModel,
    thresholds: BandThresholds,
    codes: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
) -> Array:
    """The age (days since the first purchase) at which each customer, buying nothing
    more, reaches the band above its `codes`; infinite for the top band and for
    customers whose risk cannot grow (no repeat purchase: p_alive stays 1).

    Churn risk reaches a threshold exactly when 1 - p_alive reaches the
    population quantile at that percentile (`churn_risk`), and p_alive falls
    with age in closed form (`scoring.bgnbd.age_at_p_alive`).
    """
    quantiles = np.asarray(model.churn_quantiles, dtype=np.float64)
    step = 100.0 / (len(quantiles) - 1)
    c = np.asarray(codes, dtype=np.int64)
    alive_at = np.full(len(c), -1.0)  # p_alive at the crossing; -1: none
    for code in range(len(BAND_ORDER) - 1):
        threshold = thresholds.above(code)
        assert threshold is not None  # noqa: S101 - only the top band has none
        k = math.ceil(threshold / step - 1e-9)
        if k < len(quantiles):
            alive_at[c == code] = 1.0 - quantiles[k]
    return np.where(
        alive_at >= 0.0,
        bgnbd.age_at_p_alive(model.bgnbd, np.maximum(alive_at, 0.0), x, t_x),
        np.inf,
    )


def traits(
    model: TraitModel,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    m: ArrayLike,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
) -> Traits:
    """The traits of customers with x repeat purchase days, the last t_x days and the
    first T days ago, whose repeat purchase days averaged m."""
    alive = bgnbd.p_alive(model.bgnbd, x, t_x, T)
    expected = bgnbd.expected_purchases(model.bgnbd, horizon_days, x, t_x, T)
    if model.gamma_gamma is None:
        value = np.full_like(expected, np.nan)
    else:
        spend = gamma_gamma.expected_spend(
            model.gamma_gamma, x, np.where(np.asarray(x) > 0, m, 0.0)
        )
        value = expected * spend
    risk = churn_risk(model.churn_quantiles, 1.0 - alive)
    return Traits(alive, expected, value, risk)
