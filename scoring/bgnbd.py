"""BG/NBD: how many purchases a customer makes, and whether the customer is still there.

Fader, Hardie & Lee (2005), "Counting your customers the easy way: an
alternative to the Pareto/NBD model", Marketing Science 24(2). While alive,
a customer buys as a Poisson process of rate lambda ~ Gamma(r, alpha); after
each purchase the customer drops out with probability p ~ Beta(a, b). A
customer's history enters only through x (repeat purchases), t_x (time of the
last purchase) and T (time observed), all counted from the first purchase, in
the time unit `alpha` is in (the project uses days).

Everything here is closed form and vectorised over customers: the trainer's
likelihood, the worker's live traits. Equation numbers are the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, gammaln, hyp2f1

Array = NDArray[np.float64]


@dataclass(frozen=True)
class BgNbdParams:
    """The four BG/NBD parameters; `alpha` is in the model's time unit."""

    r: float
    alpha: float
    a: float
    b: float

    def in_unit(self, days_per_unit: float) -> BgNbdParams:
        """The same model with time in another unit (`alpha` scales, the rest do not)."""
        return BgNbdParams(self.r, self.alpha / days_per_unit, self.a, self.b)


def _arrays(*values: ArrayLike) -> list[Array]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def log_likelihood(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Each customer's log-likelihood (eq. 6)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    common += betaln(a, b + x) - betaln(a, b)
    stayed = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    # The drop-out term exists only after a repeat purchase: B(a+1, b+x-1)/B(a, b+x).
    left = np.where(
        repeat,
        np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return np.asarray(common + np.logaddexp(stayed, left), dtype=np.float64)


def _odds_gone(params: BgNbdParams, x: Array, t_x: Array, T: Array) -> Array:
    """P(dropped out) / P(alive) given the history; 0 without a repeat purchase."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    ratio = np.log(alpha + T) - np.log(alpha + t_x)
    log_odds = np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) + (r + x) * ratio
    return np.where(repeat, np.exp(np.minimum(log_odds, 700.0)), 0.0)


def p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """The probability that a customer with this history has not dropped out (eq. 13).

    >>> cdnow = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)  # weeks
    >>> float(p_alive(cdnow, 0, 0.0, 30.0))  # no repeat purchase: never seen leaving
    1.0
    >>> round(float(p_alive(cdnow, 4, 10.0, 38.0)), 3)  # four repeats, silent for 28 weeks
    0.066
    """
    x, t_x, T = _arrays(x, t_x, T)
    return 1.0 / (1.0 + _odds_gone(params, x, t_x, T))


def expected_purchases(
    params: BgNbdParams,
    horizon: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
) -> Array:
    """Purchases expected in the next `horizon` time units, given the history (eq. 10).

    >>> cdnow = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> round(float(expected_purchases(cdnow, 39, 2, 30.43, 38.86)), 3)  # the paper: 1.226
    1.226
    """
    h, x, t_x, T = _arrays(horizon, x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = h / (alpha + T + h)
    decay = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + h)))
    alive_part = (a + b + x - 1) / (a - 1) * (1.0 - decay * hyp2f1(r + x, b + x, a + b + x - 1, z))
    return np.asarray(alive_part / (1.0 + _odds_gone(params, x, t_x, T)), dtype=np.float64)


def expected_purchases_new(params: BgNbdParams, t: ArrayLike) -> Array:
    """Repeat purchases a customer is expected to make in `t` time units after the first (eq. 9)."""
    (t,) = _arrays(t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    decay = (alpha / (alpha + t)) ** r
    unconditional = (a + b - 1) / (a - 1) * (1.0 - decay * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    return np.asarray(unconditional, dtype=np.float64)


def age_at_p_alive(params: BgNbdParams, p: ArrayLike, x: ArrayLike, t_x: ArrayLike) -> Array:
    """The age T at which p_alive falls to `p` if the customer buys nothing more.

    Inverts eq. 13 in T: ``(alpha + t_x) * ((1/p - 1) * (b + x - 1) / a) ** (1 / (r + x)) - alpha``.
    Infinite where it never does (no repeat purchase, or p <= 0); t_x where it already has (p >= 1).

    >>> cdnow = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> T = float(age_at_p_alive(cdnow, 0.066, 4, 10.0))
    >>> round(T, 1), round(float(p_alive(cdnow, 4, 10.0, T)), 3)
    (37.9, 0.066)
    """
    p, x, t_x = _arrays(p, x, t_x)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = (x > 0) & (p > 0)
    odds = np.where(repeat, (1.0 / np.where(repeat, p, 1.0) - 1.0), 1.0)
    base = odds * np.where(repeat, b + x - 1, 1.0) / a
    with np.errstate(divide="ignore"):
        T = (alpha + t_x) * np.exp(np.log(np.maximum(base, 0.0)) / (r + x)) - alpha
    return np.where(repeat, np.maximum(T, t_x), np.inf)


def expected_purchases_while_silent(
    params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, start: ArrayLike, end: ArrayLike
) -> Array:
    """Purchases the model expects from age `start` to `end` of a customer with history
    (x, t_x) who bought nothing in between: the integral of its purchase intensity.

    The intensity at age T is p_alive(x, t_x, T) * (r + x) / (alpha + T) (alive,
    and the posterior mean rate). With ``u = ((alpha + T) / (alpha + t_x)) ** (r + x)``
    and ``A = a / (b + x - 1)`` (0 without a repeat purchase) it integrates to
    ``ln[u / (1 + A u)]`` between the two ages. Summed over a customer's silent
    stretches it is the compensator of its purchase count: what the model
    predicted, to set against what the customer then did (the calibration).

    >>> cdnow = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> whole = float(expected_purchases_while_silent(cdnow, 2, 10.0, 20.0, 40.0))
    >>> halves = expected_purchases_while_silent(cdnow, 2, 10.0, [20.0, 30.0], [30.0, 40.0])
    >>> round(whole, 6) == round(float(halves.sum()), 6)
    True
    """
    x, t_x, start, end = _arrays(x, t_x, start, end)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    A = np.where(x > 0, a / np.where(x > 0, b + x - 1, 1.0), 0.0)

    def log_term(T: Array) -> Array:
        log_u = (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.asarray(log_u - np.log1p(A * np.exp(np.minimum(log_u, 700.0))))

    return np.asarray(np.maximum(log_term(np.maximum(end, start)) - log_term(start), 0.0))
