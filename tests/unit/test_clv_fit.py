"""BG/NBD and Gamma-Gamma fitted on CDNOW reproduce the published parameters.

Fader, Hardie & Lee (2005), "Counting your customers the easy way", fit BG/NBD
on the 2,357 customers of the CDNOW sample over weeks 0-39 of 1997 (the
calibration period, up to 1997-09-30): r = 0.243, alpha = 4.414 weeks,
a = 0.793, b = 2.426. Gamma-Gamma on the 946 repeat buyers of that period:
p = 6.25, q = 3.74, v = 15.44 (as `lifetimes` and PyMC-Marketing report).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from offline.cdnow import convert_cdnow
from offline.clv_fit import FitFailed, PurchaseSummary, fit_bgnbd, fit_gamma_gamma
from offline.customer_table import Horizon, customer_table
from offline.traits import summary_at

CDNOW = Path(__file__).parents[1] / "data" / "cdnow_sample.csv"
END_OF_WEEK_39 = datetime(1997, 9, 30, 23, 59, 59, tzinfo=UTC)


def summary(events: pl.DataFrame, at: datetime) -> PurchaseSummary:
    """The trainer's own path: events, the customer table, its summary at `at`."""
    return summary_at(customer_table([events.lazy()], Horizon(at, 365)), at)


@pytest.fixture(scope="module")
def calibration() -> PurchaseSummary:
    return summary(convert_cdnow(CDNOW), END_OF_WEEK_39)


def test_bgnbd_on_cdnow_is_within_five_percent_of_the_paper(calibration: PurchaseSummary) -> None:
    fit = fit_bgnbd(calibration)
    weeks = fit.params.in_unit(7.0)
    # The paper's 2,357 less the 8 whose rows are all $0.00: sessions in the converted log.
    assert fit.customers == 2349
    assert weeks.r == pytest.approx(0.243, rel=0.05)
    assert weeks.alpha == pytest.approx(4.414, rel=0.05)
    assert weeks.a == pytest.approx(0.793, rel=0.05)
    assert weeks.b == pytest.approx(2.426, rel=0.05)
    assert fit.groups < fit.customers  # grouped by (x, t_x, T)


def test_gamma_gamma_on_cdnows_repeat_buyers_is_within_two_percent(
    calibration: PurchaseSummary,
) -> None:
    fit = fit_gamma_gamma(calibration)
    assert fit.customers == 946
    assert fit.params.p == pytest.approx(6.25, rel=0.02)
    assert fit.params.q == pytest.approx(3.74, rel=0.02)
    assert fit.params.v == pytest.approx(15.44, rel=0.02)


def purchases(rows: list[tuple[str, date, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": [f"e{n}" for n in range(len(rows))],
            "customer_id": [c for c, _, _ in rows],
            "type": ["purchase"] * len(rows),
            "occurred_at": [datetime(d.year, d.month, d.day, 12, tzinfo=UTC) for _, d, _ in rows],
            "amount": [a for _, _, a in rows],
        }
    )


def test_a_summary_counts_repeat_days_not_rows() -> None:
    events = purchases([("a", date(2024, 1, 1), 10.0), ("a", date(2024, 1, 1), 5.0),
                        ("a", date(2024, 1, 5), 20.0), ("a", date(2024, 1, 9), 30.0),
                        ("b", date(2024, 1, 3), 8.0)])  # fmt: skip
    found = summary(events, datetime(2024, 1, 10, 12, tzinfo=UTC))
    assert found.customer_id.to_list() == ["a", "b"]
    np.testing.assert_array_equal(found.x, [2, 0])
    np.testing.assert_array_equal(found.t_x, [8, 0])
    np.testing.assert_array_equal(found.T, [9, 7])
    np.testing.assert_array_equal(found.m, [25.0, 0.0])  # repeat days only


def test_purchases_after_the_end_are_left_out() -> None:
    events = purchases([("a", date(2024, 1, 1), 1.0), ("a", date(2024, 2, 1), 2.0)])
    found = summary(events, datetime(2024, 1, 31, 12, tzinfo=UTC))
    np.testing.assert_array_equal(found.x, [0])


def test_nothing_to_fit_says_so() -> None:
    empty = PurchaseSummary(pl.Series([], dtype=pl.String), *(np.zeros(0) for _ in range(4)))
    with pytest.raises(FitFailed, match="no customer"):
        fit_bgnbd(empty)
    with pytest.raises(FitFailed, match="fewer than two repeat buyers"):
        fit_gamma_gamma(empty)


def test_the_fit_evaluates_the_same_likelihood_as_the_closed_forms() -> None:
    """The fit computes per distinct x, t_x, T and gathers; it must sum to the reference."""
    from offline.clv_fit import _bgnbd_negative
    from scoring import bgnbd
    from scoring.bgnbd import BgNbdParams

    rng = np.random.default_rng(3)
    T = rng.integers(0, 300, 500).astype(float)
    x = np.minimum(rng.poisson(3, 500), T).astype(float)
    t_x = np.where(x > 0, np.maximum(np.floor(rng.uniform(0, 1, 500) * T), x), 0.0)
    weights = rng.integers(1, 5, 500).astype(float)
    params = BgNbdParams(0.4, 20.0, 0.8, 2.5)
    expected = float(np.dot(weights, bgnbd.log_likelihood(params, x, t_x, T)))
    log_params = np.log([params.r, params.alpha, params.a, params.b])
    value, _ = _bgnbd_negative(x, t_x, T, weights)(log_params)
    assert -value == pytest.approx(expected, rel=1e-12)


def test_the_bgnbd_gradient_equals_the_likelihoods_finite_differences() -> None:
    from scipy.optimize import approx_fprime

    from offline.clv_fit import _bgnbd_negative

    rng = np.random.default_rng(5)
    T = rng.integers(1, 300, 800).astype(float)
    x = np.minimum(rng.poisson(2, 800), T).astype(float)
    t_x = np.where(x > 0, np.maximum(np.floor(rng.uniform(0, 1, 800) * T), x), 0.0)
    weights = rng.integers(1, 5, 800).astype(float)
    negative = _bgnbd_negative(x, t_x, T, weights)
    for params in ([0.4, 20.0, 0.8, 2.5], [2.0, 3.0, 0.05, 40.0], [0.24, 30.0, 0.79, 2.43]):
        at = np.log(params)
        _, gradient = negative(at)
        numeric = approx_fprime(at, lambda p: negative(p)[0], 1e-6)
        assert gradient == pytest.approx(numeric, rel=1e-4, abs=1e-3)


def test_the_gamma_gamma_likelihood_and_gradient_equal_the_models_and_its_differences() -> None:
    from scipy.optimize import approx_fprime

    from offline.clv_fit import _gamma_gamma_negative
    from scoring import gamma_gamma
    from scoring.gamma_gamma import GammaGammaParams

    rng = np.random.default_rng(9)
    x = rng.integers(1, 12, 900).astype(float)
    m = rng.gamma(4.0, 9.0, 900)
    negative = _gamma_gamma_negative(x, m)
    for params in ([6.25, 3.74, 15.44], [1.0, 1.0, 35.0], [0.3, 12.0, 400.0]):
        expected = float(np.sum(gamma_gamma.log_likelihood(GammaGammaParams(*params), x, m)))
        at = np.log(params)
        value, gradient = negative(at)
        assert -value == pytest.approx(expected, rel=1e-12)
        numeric = approx_fprime(at, lambda p: negative(p)[0], 1e-6)
        assert gradient == pytest.approx(numeric, rel=1e-4, abs=1e-3)


def test_distinct_rows_equal_numpys_unique_rows() -> None:
    from offline.clv_fit import _distinct_rows

    rng = np.random.default_rng(8)
    columns = [rng.integers(0, 4, 3000).astype(float) for _ in range(3)]
    columns[1][::7] += 0.5  # fractional values group as exactly as whole ones
    found, counts = _distinct_rows(*columns)
    expected, expected_counts = np.unique(np.stack(columns, axis=1), axis=0, return_counts=True)
    assert np.array_equal(found, expected) and np.array_equal(counts, expected_counts)
    empty, none = _distinct_rows(np.zeros(0), np.zeros(0), np.zeros(0))
    assert empty.shape == (0, 3) and len(none) == 0
