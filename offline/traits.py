"""The artifact's predictive model: BG/NBD and Gamma-Gamma fitted on the training customers.

Fitted on every customer's whole purchase history up to T (`offline.clv_fit`),
with the churn-risk percentiles of the population; then refitted on the
calibration period up to T-H and checked against the holdout (T-H, T] as
Fader, Hardie & Lee check theirs (`schemas.traits.TraitsCheck`).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from offline.auc import roc_auc
from offline.clv_fit import BgNbdFit, FitFailed, PurchaseSummary, fit_bgnbd, fit_gamma_gamma
from offline.customer_table import THEN, CustomerTable, Horizon
from schemas.segments import RiskBand
from schemas.traits import (
    QUANTILES,
    BgNbdFigures,
    GammaGammaFigures,
    PurchaseModel,
    SegmentTraits,
    TraitsCheck,
)
from scoring import bgnbd
from scoring.customer_record import epoch_micros
from scoring.rfm import MICROS_PER_DAY, MICROS_PER_UNIT
from scoring.traits import DEFAULT_HORIZON_DAYS, BandThresholds, TraitModel, traits

TOP_BUCKET = 7
"""Calibration repeat purchase days of 7 or more share one row of the check."""
FIT_SAMPLE = 200_000
"""Customers the models are fitted on (a seeded random sample above it): at that size
the parameters' standard errors are far below what the check can tell apart, and a
million customers fit in about a second; traits and percentiles cover everyone."""


def _day(at: datetime) -> int:
    return epoch_micros(at) // MICROS_PER_DAY


def _days(column: pl.Series) -> np.ndarray:
    """UTC day numbers of a datetime column."""
    return (column.dt.epoch("us").to_numpy() // MICROS_PER_DAY).astype(np.float64)


def summary_at(table: CustomerTable, at: datetime, *, then: bool = False) -> PurchaseSummary:
    """The customers with a purchase by `at` (T, or T-H with `then`), summarised for the fit."""
    suffix = THEN if then else ""
    rows = table.rows.filter(pl.col(f"last_purchase{suffix}").is_not_null())
    first = rows["first_purchase_day"].to_numpy().astype(np.float64)
    x = rows[f"purchase_days{suffix}"].to_numpy().astype(np.float64) - 1
    repeat_micros = (
        rows[f"purchase_micros{suffix}"].to_numpy() - rows["first_day_micros"].to_numpy()
    ).astype(np.float64)
    m = np.where(x > 0, repeat_micros / np.maximum(x, 1) / MICROS_PER_UNIT, 0.0)
    return PurchaseSummary(
        rows["customer_id"],
        x,
        _days(rows[f"last_purchase{suffix}"]) - first,
        _day(at) - first,
        m,
    )


def _figures(fit: BgNbdFit) -> BgNbdFigures:
    p = fit.params
    return BgNbdFigures(
        r=p.r, alpha=p.alpha, a=p.a, b=p.b,
        log_likelihood=fit.log_likelihood, customers=fit.customers, groups=fit.groups,
    )  # fmt: skip


def purchase_model(
    table: CustomerTable, horizon: Horizon, summary: PurchaseSummary | None = None
) -> PurchaseModel | None:
    """The predictive model of the customers at T (None when the likelihood has no maximum).

    `summary` is the table's `summary_at` T, when the caller has it already.
    """
    summary = summary_at(table, horizon.as_of) if summary is None else summary
    sample = summary.sample(FIT_SAMPLE)
    try:
        fit = fit_bgnbd(sample)
    except FitFailed:
        return None
    try:
        spend = fit_gamma_gamma(sample)
        gamma_gamma = GammaGammaFigures(
            p=spend.params.p, q=spend.params.q, v=spend.params.v,
            log_likelihood=spend.log_likelihood, customers=spend.customers,
            frequency_spend_correlation=spend.frequency_spend_correlation,
        )  # fmt: skip
    except FitFailed:
        gamma_gamma = None
    churn = 1.0 - bgnbd.p_alive(fit.params, summary.x, summary.t_x, summary.T)
    quantiles = np.maximum.accumulate(np.quantile(churn, np.linspace(0.0, 1.0, QUANTILES)))
    return PurchaseModel(
        bgnbd=_figures(fit),
        gamma_gamma=gamma_gamma,
        churn_quantiles=tuple(
            float(np.clip(q, 0.0, 1.0)) for q in np.maximum.accumulate(quantiles)
        ),
        check=_check(table, horizon),
    )


def _check(table: CustomerTable, horizon: Horizon) -> TraitsCheck | None:
    """Refit on the calibration period, compare with the holdout."""
    if horizon.then is None:
        return None
    calibration = summary_at(table, horizon.then, then=True)
    try:
        fit = fit_bgnbd(calibration.sample(FIT_SAMPLE))
    except FitFailed:
        return None
    rows = table.rows.filter(pl.col(f"last_purchase{THEN}").is_not_null())
    actual = (rows["purchase_days"] - rows[f"purchase_days{THEN}"]).to_numpy().astype(np.int64)
    holdout_days = _day(horizon.as_of) - _day(horizon.then)
    predicted = bgnbd.expected_purchases(
        fit.params, holdout_days, calibration.x, calibration.t_x, calibration.T
    )
    bucket = np.minimum(calibration.x, TOP_BUCKET).astype(np.int64)
    by_x: dict[str, tuple[float, float, int]] = {}
    for b in range(TOP_BUCKET + 1):
        members = bucket == b
        if members.any():
            label = f"{b}+" if b == TOP_BUCKET else str(b)
            by_x[label] = (
                float(actual[members].mean()),
                float(predicted[members].mean()),
                int(members.sum()),
            )
    return TraitsCheck(
        holdout_days=max(holdout_days, 1),
        calibration=_figures(fit),
        customers=len(calibration),
        by_calibration_purchases=by_x,
        actual_repeat_days=int(actual.sum()),
        predicted_repeat_days=float(predicted.sum()),
        expected_purchases_auc=roc_auc(actual > 0, predicted),
    )


def segment_traits(
    model: PurchaseModel,
    summary: PurchaseSummary,
    segment_ids: np.ndarray,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    bands: BandThresholds = BandThresholds(),  # noqa: B008 - frozen, immutable
) -> dict[int, SegmentTraits]:
    """Per segment id, its members' mean traits at T and how many are at High risk.

    `summary` is the customer table's `summary_at` T, and `segment_ids` line up
    with its customers (those with a purchase by T).
    """
    found = traits(TraitModel.of(model), summary.x, summary.t_x, summary.T, summary.m, horizon_days)
    high = bands.band(found.churn_risk) == RiskBand.HIGH.value
    out: dict[int, SegmentTraits] = {}
    for segment in np.unique(segment_ids):
        members = segment_ids == segment
        value = float(found.expected_value[members].mean()) if model.gamma_gamma else None
        out[int(segment)] = SegmentTraits(
            horizon_days=horizon_days,
            mean_p_alive=float(found.p_alive[members].mean()),
            mean_expected_purchases=float(found.expected_purchases[members].mean()),
            mean_expected_value=value,
            high_risk=int(high[members].sum()),
        )
    return out
