"""The traits of customers being scored, as of their evaluation (pure).

For the rows of an evaluation: each customer's whole purchase history at
its as-of time (`scoring.customer_state.Lifetime`), its traits
(`scoring.traits.traits`) and risk band, the day it reaches the next band if
it stays silent (so the sweep looks at it then), and, against its previous
evaluation, what BG/NBD predicted it would buy since and what it bought (the
calibration the metrics publish).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

import numpy as np
from numpy.typing import NDArray

from scoring import bgnbd
from scoring.customer_record import BAND_CODES, CustomerRecord
from scoring.customer_state import Lifetime
from scoring.rfm import MICROS_PER_DAY, MICROS_PER_UNIT
from scoring.traits import (
    BandThresholds,
    TraitModel,
    Traits,
    crossing_age,
    traits,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_NO_HISTORY = Lifetime(0, 0, 0, 0, 0)
"""For a record that holds no first purchase day (none exists that `apply` wrote)."""


@dataclass(frozen=True)
class TraitRows:
    """Per row of an evaluation: traits, band, history, and the calibration since the last."""

    traits: Traits
    band: IntArray
    """Risk band code (`scoring.traits.BAND_ORDER`)."""
    repeat_days: IntArray
    """Repeat purchase days (BG/NBD's x) at the evaluation."""
    crossing: IntArray
    """When the next band is reached if the customer buys nothing (micros since the epoch;
    int64 max: never)."""
    expected_since: FloatArray
    """Repeat purchase days BG/NBD expected since the previous evaluation (0 without one)."""
    bought_since: IntArray
    """Repeat purchase days made since (0 without a previous evaluation)."""
    before_segment: IntArray
    """Where each record stood before: segment id (-1: none), band code (-1: none) and
    p_alive (NaN: none), for the populations to move."""
    before_band: IntArray
    before_alive: FloatArray


def traits_at(
    model: TraitModel,
    records: Sequence[CustomerRecord],
    as_of: Sequence[datetime],
    horizon_days: float,
    thresholds: BandThresholds,
    lifetimes: Sequence[Lifetime | None] | None = None,
) -> tuple[Traits, IntArray, IntArray, tuple[FloatArray, FloatArray, FloatArray]]:
    """Traits and band codes of `records` at `as_of`, with each one's first purchase day
    and (x, t_x, T); `lifetimes`, when given, are the records' `lifetime(as_of)`."""
    if lifetimes is None:
        lifetimes = [r.state.lifetime(at) for r, at in zip(records, as_of, strict=True)]
    x, t_x, T, repeat, days = _columns(
        [_NO_HISTORY if life is None else life for life in lifetimes], len(_NO_HISTORY)
    ).T
    # Lifetime.mean_value, vectorised: the micro-units are integers exact in a float64.
    m = np.where(x > 0, repeat / np.maximum(x, 1.0) / MICROS_PER_UNIT, 0.0)
    first = days.astype(np.int64)  # day numbers: exact in a float64
    found = traits(model, x, t_x, T, m, horizon_days)
    return found, thresholds.codes(found.churn_risk), first, (x, t_x, T)


def score_traits(
    model: TraitModel,
    records: Sequence[CustomerRecord],
    as_of: Sequence[datetime],
    as_of_micros: IntArray,
    previous: tuple[NDArray[np.bool_], FloatArray, IntArray],
    *,
    horizon_days: float,
    thresholds: BandThresholds,
    lifetimes: Sequence[Lifetime | None] | None = None,
) -> TraitRows:
    """The `TraitRows` of `records` scored at `as_of`; `previous` is the evaluation's
    (had, features, as-of micros) of each record's last evaluation."""
    found, band, first, (x, t_x, T) = traits_at(
        model, records, as_of, horizon_days, thresholds, lifetimes
    )
    today = as_of_micros // MICROS_PER_DAY
    age = crossing_age(model, thresholds, band, x, t_x)
    finite = np.isfinite(age)
    day = first + np.ceil(np.where(finite, age, 0.0) - 1e-9).astype(np.int64)
    crossing = np.where(
        finite, np.maximum(day, today + 1) * MICROS_PER_DAY, np.iinfo(np.int64).max
    ).astype(np.int64)
    # Where each record stood, in one pass: segment and band (-1: none), p_alive (NaN: none),
    # repeat purchase days (-1: none).
    before = _columns(
        [
            (
                -1 if r.segment_id is None or r.band is None else r.segment_id,
                -1 if r.band is None else BAND_CODES[r.band],
                np.nan if r.p_alive is None else r.p_alive,
                -1 if r.repeat_days is None else r.repeat_days,
            )
            for r in records
        ],
        4,
    )
    x0 = before[:, 3].astype(np.int64)
    expected, bought = _since_previous(model, x0, previous, first, x, t_x, T)
    return TraitRows(
        found, band, x.astype(np.int64), crossing, expected, bought,
        before[:, 0].astype(np.int64), before[:, 1].astype(np.int64), before[:, 2],
    )  # fmt: skip


def _columns(rows: Sequence[tuple[float, ...]], width: int) -> FloatArray:
    """Rows of `width` numbers as a float array; `np.fromiter` over the flattened rows
    takes a third of the time `np.asarray` does (it need not find the shape)."""
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width)
    return flat.reshape(-1, width)


def _since_previous(
    model: TraitModel,
    x0: IntArray,
    previous: tuple[NDArray[np.bool_], FloatArray, IntArray],
    first: IntArray,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
) -> tuple[FloatArray, IntArray]:
    """Expected and actual repeat purchase days between each record's last evaluation and now
    (`x0`: its repeat purchase days then, -1 for none).

    The expectation integrates the purchase intensity over the silent
    stretches (`scoring.bgnbd.expected_purchases_while_silent`): from the last
    evaluation to the newest purchase with the history then, and from it to
    now with the history now. Where several purchase days fell between two
    evaluations (one batch), the ones in the middle are not seen apart.
    """
    had, before, before_as_of = previous
    known = had & (x0 >= 0)
    n = len(x0)
    expected = np.zeros(n, dtype=np.float64)
    bought = np.zeros(n, dtype=np.int64)
    if not known.any():
        return expected, bought
    rows = np.flatnonzero(known)
    then = before_as_of[rows]
    last_then = (then - np.round(before[rows, 0] * MICROS_PER_DAY).astype(np.int64)) // (
        MICROS_PER_DAY
    )
    start = then // MICROS_PER_DAY - first[rows]
    x_then = x0[rows].astype(np.float64)
    x_now, tx_now, T_now = x[rows], t_x[rows], T[rows]
    same = x_now <= x_then
    tx_then = np.where(same, tx_now, last_then - first[rows]).astype(np.float64)
    params = model.bgnbd
    silent = bgnbd.expected_purchases_while_silent
    to_purchase = silent(params, x_then, tx_then, start, np.where(same, T_now, tx_now))
    after = silent(params, x_now, tx_now, np.maximum(tx_now, start), T_now)
    expected[rows] = to_purchase + np.where(same, 0.0, after)
    bought[rows] = np.maximum(x_now - x_then, 0).astype(np.int64)
    return expected, bought
