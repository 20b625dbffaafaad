"""Fitting BG/NBD and Gamma-Gamma by maximum likelihood, from purchase histories.

A customer's history is summarised as in Fader, Hardie & Lee (2005): x, the
repeat purchase days (purchase days after the first), t_x the day of the last
purchase and T the days observed, both counted from the first purchase, and
m, the mean value of the repeat purchase days (a day's purchases summed);
`offline.traits.summary_at` reads it from the customer table. The
likelihoods are closed form (`scoring.bgnbd`, `scoring.gamma_gamma`) and
depend on a customer only through these numbers, so customers with the same
(x, t_x, T) are evaluated once with their count as a weight, and functions of
x, t_x or T alone once per distinct value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln

from scoring.bgnbd import BgNbdParams
from scoring.gamma_gamma import GammaGammaParams


class FitFailed(RuntimeError):
    """The optimiser did not converge to finite parameters."""


@dataclass(frozen=True)
class PurchaseSummary:
    """One row per customer with a purchase: x, t_x, T (days) and m (currency)."""

    customer_id: pl.Series
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray
    """Mean value of the repeat purchase days (0 without one)."""

    def __len__(self) -> int:
        return len(self.customer_id)

    def sample(self, size: int, seed: int = 0) -> PurchaseSummary:
        """At most `size` of the customers, drawn at random with `seed` (all when fewer)."""
        if len(self) <= size:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), size, replace=False))
        ids = self.customer_id.gather(keep)
        return PurchaseSummary(ids, self.x[keep], self.t_x[keep], self.T[keep], self.m[keep])


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


LOG_BOUND = 12.0
"""Parameters are searched within exp(-12) .. exp(12) (6e-6 .. 1.6e5): a history with
no sign of drop-out sends BG/NBD's a and b to infinity together, which would otherwise
keep the optimiser going for minutes; at the bound the model is already geometric."""


def _maximise(
    negative: Callable[[np.ndarray], float | tuple[float, np.ndarray]],
    start: np.ndarray,
    names: str,
    *,
    gradient: bool = False,
) -> tuple[np.ndarray, float]:
    """Minimise `negative` over bounded log-parameters with L-BFGS-B; with `gradient`,
    `negative` returns its gradient too (else L-BFGS-B differences it numerically)."""
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    result = minimize(negative, start, method="L-BFGS-B", bounds=bounds, jac=gradient or None,
                      options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8})  # fmt: skip
    values = np.exp(np.asarray(result.x, dtype=np.float64))
    if not np.all(np.isfinite(values)) or not np.isfinite(result.fun):
        raise FitFailed(f"{names}: the likelihood has no finite maximum ({result.message})")
    return values, -float(result.fun)


class _Distinct:
    """A column as indices into its distinct values: a function of the values is
    computed once per distinct value and gathered (x, t_x and T repeat a lot)."""

    def __init__(self, column: np.ndarray) -> None:
        self.values, self.index, self.index_counts = np.unique(
            column, return_inverse=True, return_counts=True
        )

    def gather(self, computed: np.ndarray) -> np.ndarray:
        return computed[self.index]


def _bgnbd_negative(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """-log-likelihood of log-parameters, equal to `scoring.bgnbd.log_likelihood`'s sum,
    and its gradient.

    Per customer the likelihood is exp(common) * (A + B), A the "still alive"
    term (alpha + T)^-(r+x) and B, for repeat buyers, the "dropped out after
    the last purchase" term a / (b + x - 1) * (alpha + t_x)^-(r+x); with the
    shares wA = A / (A + B) and wB = B / (A + B), each partial derivative is
    the derivative of `common` plus wA and wB times those of log A and log B,
    all in closed form (digamma for the gamma and beta functions); times the
    parameter, for the log scale searched.
    """
    dx, dt, dT = _Distinct(x), _Distinct(t_x), _Distinct(T)
    repeat = x > 0
    ux = dx.values

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(log_params)
        common = dx.gather(gammaln(r + ux) + betaln(a, b + ux)) - gammaln(r) - betaln(a, b)
        common += r * np.log(alpha)
        rx = r + x
        log_T, log_t = dT.gather(np.log(alpha + dT.values)), dt.gather(np.log(alpha + dt.values))
        stayed = -rx * log_T
        lag = np.where(ux > 0, b + ux - 1, 1.0)  # b + x - 1 of the repeat buyers
        drop = dx.gather(np.log(a) - np.log(lag))
        left = np.where(repeat, drop - rx * log_t, -np.inf)
        both = np.logaddexp(stayed, left)
        total = float(np.dot(weights, common + both))
        if not np.isfinite(total):
            return np.inf, np.zeros(4)
        w_stayed = weights * np.exp(stayed - both)
        w_left = weights * np.exp(left - both)  # 0 where x = 0
        inv_T = dT.gather(1.0 / (alpha + dT.values))
        inv_t = dt.gather(1.0 / (alpha + dt.values))
        digamma_x = dx.gather(digamma(r + ux))
        digamma_abx = dx.gather(digamma(a + b + ux))
        d_r = (
            np.dot(weights, digamma_x) + weights.sum() * (np.log(alpha) - digamma(r))
            - np.dot(w_stayed, log_T) - np.dot(w_left, log_t)
        )  # fmt: skip
        d_alpha = (
            weights.sum() * r / alpha
            - np.dot(w_stayed, rx * inv_T) - np.dot(w_left, rx * inv_t)
        )  # fmt: skip
        d_a = weights.sum() * digamma(a + b) - np.dot(weights, digamma_abx) + w_left.sum() / a
        d_b = (
            np.dot(weights, dx.gather(digamma(b + ux)) - digamma_abx)
            + weights.sum() * (digamma(a + b) - digamma(b))
            - np.dot(w_left, dx.gather(1.0 / lag))
        )  # fmt: skip
        gradient = np.array([r * d_r, alpha * d_alpha, a * d_a, b * d_b])
        return -total, -gradient

    return negative


def _gamma_gamma_negative(
    x: np.ndarray, m: np.ndarray
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """-log-likelihood of Gamma-Gamma's log-parameters on repeat buyers (x, m), equal to
    `scoring.gamma_gamma`'s, and its gradient.

    Per customer: log Gamma(px + q) - log Gamma(px) - log Gamma(q) + (px - 1) log m
    + px log x + q log v - (px + q) log(v + xm); its partial derivatives are in
    closed form (digamma), times the parameter for the log scale searched. Functions
    of x alone (the gamma and digamma terms) once per distinct x.
    """
    dx = _Distinct(x)
    ux, n = dx.values, float(len(x))
    log_mx = np.log(m) + np.log(x)
    sum_x_log_mx = float(np.dot(x, log_mx))
    sum_log_m = float(np.sum(np.log(m)))

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, v = np.exp(log_params)
        px = p * x
        log_vxm = np.log(v + x * m)
        total = (
            float(np.dot(dx.index_counts, gammaln(p * ux + q) - gammaln(p * ux)))
            + p * sum_x_log_mx - sum_log_m - float(np.dot(px + q, log_vxm))
            + n * (q * np.log(v) - gammaln(q))
        )  # fmt: skip
        if not np.isfinite(total):
            return np.inf, np.zeros(3)
        psi_pxq = digamma(p * ux + q)
        d_p = (
            float(np.dot(dx.index_counts * ux, psi_pxq - digamma(p * ux)))
            + sum_x_log_mx - float(np.dot(x, log_vxm))
        )  # fmt: skip
        d_q = (
            float(np.dot(dx.index_counts, psi_pxq)) - float(np.sum(log_vxm))
            + n * (np.log(v) - digamma(q))
        )  # fmt: skip
        d_v = n * q / v - float(np.sum((px + q) / (v + x * m)))
        return -total, -np.array([p * d_p, q * d_q, v * d_v])

    return negative


def _distinct_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of the columns side by side, sorted, and how often each occurs
    (`np.unique(axis=0, return_counts=True)` through one lexsort, several times faster)."""
    rows = np.stack(columns, axis=1)
    if not len(rows):
        return rows, np.zeros(0, dtype=np.int64)
    ordered = rows[np.lexsort(columns[::-1])]
    starts = np.flatnonzero(np.r_[True, np.any(ordered[1:] != ordered[:-1], axis=1)])
    return ordered[starts], np.diff(np.r_[starts, len(ordered)])


def fit_bgnbd(summary: PurchaseSummary) -> BgNbdFit:
    """Maximum likelihood BG/NBD on the summary, customers grouped by (x, t_x, T)."""
    if len(summary) == 0:
        raise FitFailed("BG/NBD: no customer with a purchase")
    unique, weights = _distinct_rows(summary.x, summary.t_x, summary.T)
    negative = _bgnbd_negative(unique[:, 0], unique[:, 1], unique[:, 2], weights.astype(np.float64))
    start = np.log([1.0, max(float(np.mean(summary.T)), 1.0), 1.0, 1.0])
    (r, alpha, a, b), ll = _maximise(negative, start, "BG/NBD", gradient=True)
    params = BgNbdParams(float(r), float(alpha), float(a), float(b))
    return BgNbdFit(params, ll, len(summary), len(unique))


def fit_gamma_gamma(summary: PurchaseSummary) -> GammaGammaFit:
    """Maximum likelihood Gamma-Gamma on the repeat buyers (x > 0, m > 0)."""
    keep = (summary.x > 0) & (summary.m > 0)
    x, m = summary.x[keep], summary.m[keep]
    if len(x) < 2:
        raise FitFailed("Gamma-Gamma: fewer than two repeat buyers")
    negative = _gamma_gamma_negative(x, m)
    (p, q, v), ll = _maximise(negative, np.log([1.0, 1.0, float(np.mean(m))]), "Gamma-Gamma",
                              gradient=True)  # fmt: skip
    correlation = float(np.corrcoef(x, m)[0, 1]) if np.std(x) > 0 and np.std(m) > 0 else 0.0
    params = GammaGammaParams(float(p), float(q), float(v))
    return GammaGammaFit(params, ll, len(x), correlation)
