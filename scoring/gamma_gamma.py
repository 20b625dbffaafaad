"""Gamma-Gamma: what a customer spends per purchase.

Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer
base analysis", Journal of Marketing Research 42(4), after Colombo & Jiang
(1999). A customer's purchase values are Gamma(p, nu) around the customer's
own mean, with nu ~ Gamma(q, v) across customers; a customer enters through
x, the number of repeat purchases, and m, their mean value. It assumes (and
the trainer reports) that spend does not depend on purchase frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

Array = NDArray[np.float64]


@dataclass(frozen=True)
class GammaGammaParams:
    """The three Gamma-Gamma parameters (`v` in the currency's units)."""

    p: float
    q: float
    v: float


def log_likelihood(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> Array:
    """Each repeat buyer's log-likelihood of mean value `m` over `x` purchases (x > 0)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    p, q, v = params.p, params.q, params.v
    px = p * x
    return np.asarray(
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
        + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(v + x * m),
        dtype=np.float64,
    )  # fmt: skip


def expected_spend(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> Array:
    """The expected value of a customer's next purchase, given x repeat purchases of mean m.

    With no repeat purchase (x = 0) it is the population mean p v / (q - 1).

    >>> cdnow = GammaGammaParams(p=6.25, q=3.74, v=15.44)
    >>> round(float(expected_spend(cdnow, 0, 0.0)), 2)
    35.22
    >>> round(float(expected_spend(cdnow, 6, 20.0)), 2)  # pulled from 20 toward 35
    21.04
    """
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    p, q, v = params.p, params.q, params.v
    return np.asarray(p * (v + x * m) / (p * x + q - 1), dtype=np.float64)
