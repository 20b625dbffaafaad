"""Fitting BG/NBD and Gamma-Gamma by maximum likelihood, from purchase histories.

A customer's history is summarised as in Fader, Hardie & Lee (2005): x, the
repeat purchase days (purchase days after the first), t_x the day of the last
purchase and T the days observed, both counted from the first purchase, and
m, the mean value of the repeat purchase days (a day's purchases summed). The
likelihoods are closed form (`scoring.bgnbd`, `scoring.gamma_gamma`) and
depend on a customer only through these numbers, so customers with the same
(x, t_x, T) are fitted once with their count as a weight: a million customers
over a year of days are some tens of thousands of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from scipy.optimize import minimize

from scoring import bgnbd, gamma_gamma
from scoring.bgnbd import BgNbdParams
from scoring.gamma_gamma import GammaGammaParams


class FitFailed(RuntimeError):
    """The optimiser did not converge to finite parameters."""


@dataclass(frozen=True)
class PurchaseSummary:
    """One row per customer with a purchase: x, t_x, T (days) and m (currency)."""

    customer_id: list[str]
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray
    """Mean value of the repeat purchase days (0 without one)."""

    def __len__(self) -> int:
        return len(self.customer_id)


def summarize(purchases: pl.DataFrame, end: date) -> PurchaseSummary:
    """The summary of purchases up to and including day `end`.

    `purchases` has ``customer_id``, ``day`` (a date) and ``amount``; a day's
    purchases of one customer count as one purchase of their summed value.
    """
    days = (
        purchases.filter(pl.col("day") <= end)
        .group_by("customer_id", "day")
        .agg(pl.col("amount").sum())
        .sort("customer_id", "day")
    )
    first = pl.col("day").min().over("customer_id")
    per_customer = (
        days.with_columns(
            (pl.col("day") - first).dt.total_days().alias("since"),
            (pl.col("day") > first).alias("repeat"),
        )
        .group_by("customer_id")
        .agg(
            pl.col("repeat").sum().alias("x"),
            pl.col("since").max().alias("t_x"),
            (pl.lit(end) - pl.col("day").min()).dt.total_days().alias("T"),
            pl.col("amount").filter(pl.col("repeat")).mean().fill_null(0.0).alias("m"),
        )
        .sort("customer_id")
    )
    return PurchaseSummary(
        per_customer["customer_id"].to_list(),
        per_customer["x"].to_numpy().astype(np.float64),
        per_customer["t_x"].to_numpy().astype(np.float64),
        per_customer["T"].to_numpy().astype(np.float64),
        per_customer["m"].to_numpy().astype(np.float64),
    )


@dataclass(frozen=True)
class BgNbdFit:
    """Fitted BG/NBD parameters (days) and the figures of the fit."""

    params: BgNbdParams
    log_likelihood: float
    customers: int
    groups: int
    """Distinct (x, t_x, T) rows the likelihood was evaluated on."""


@dataclass(frozen=True)
class GammaGammaFit:
    """Fitted Gamma-Gamma parameters and the figures of the fit."""

    params: GammaGammaParams
    log_likelihood: float
    customers: int
    frequency_spend_correlation: float
    """Pearson correlation of x and m among repeat buyers: the model assumes about 0."""


def _maximise(negative: object, start: np.ndarray, names: str) -> tuple[np.ndarray, float]:
    result = minimize(negative, start, method="Nelder-Mead",
                      options={"maxiter": 20_000, "xatol": 1e-7, "fatol": 1e-9})  # fmt: skip
    values = np.exp(np.asarray(result.x, dtype=np.float64))
    if not np.all(np.isfinite(values)) or not np.isfinite(result.fun):
        raise FitFailed(f"{names}: the likelihood has no finite maximum ({result.message})")
    return values, -float(result.fun)


def fit_bgnbd(summary: PurchaseSummary) -> BgNbdFit:
    """Maximum likelihood BG/NBD on the summary, customers grouped by (x, t_x, T)."""
    if len(summary) == 0:
        raise FitFailed("BG/NBD: no customer with a purchase")
    rows = np.stack([summary.x, summary.t_x, summary.T], axis=1)
    unique, weights = np.unique(rows, axis=0, return_counts=True)
    x, t_x, T = unique[:, 0], unique[:, 1], unique[:, 2]

    def negative(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        ll = bgnbd.log_likelihood(BgNbdParams(r, alpha, a, b), x, t_x, T)
        total = float(np.dot(weights, ll))
        return -total if np.isfinite(total) else np.inf

    start = np.log([1.0, max(float(np.mean(summary.T)), 1.0), 1.0, 1.0])
    (r, alpha, a, b), ll = _maximise(negative, start, "BG/NBD")
    params = BgNbdParams(float(r), float(alpha), float(a), float(b))
    return BgNbdFit(params, ll, len(summary), len(unique))


def fit_gamma_gamma(summary: PurchaseSummary) -> GammaGammaFit:
    """Maximum likelihood Gamma-Gamma on the repeat buyers (x > 0, m > 0)."""
    keep = (summary.x > 0) & (summary.m > 0)
    x, m = summary.x[keep], summary.m[keep]
    if len(x) < 2:
        raise FitFailed("Gamma-Gamma: fewer than two repeat buyers")

    def negative(log_params: np.ndarray) -> float:
        p, q, v = np.exp(log_params)
        total = float(np.sum(gamma_gamma.log_likelihood(GammaGammaParams(p, q, v), x, m)))
        return -total if np.isfinite(total) else np.inf

    (p, q, v), ll = _maximise(negative, np.log([1.0, 1.0, float(np.mean(m))]), "Gamma-Gamma")
    correlation = float(np.corrcoef(x, m)[0, 1]) if np.std(x) > 0 and np.std(m) > 0 else 0.0
    params = GammaGammaParams(float(p), float(q), float(v))
    return GammaGammaFit(params, ll, len(x), correlation)
