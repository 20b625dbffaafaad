"""Synthetic event logs with known personas, generated vectorised (millions of rows).

Used by tests and benchmarks; each customer belongs to a persona with its own
purchase rate, basket size and activity span, so recovered segments can be
compared with the ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray


@dataclass(frozen=True)
class Persona:
    """How one kind of customer behaves."""

    name: str
    share: float
    purchases_per_month: float
    basket_median: float
    active_share: float  # share of the period the customer stays active (churn ends it)
    sessions_per_purchase: float


PERSONAS: tuple[Persona, ...] = (
    Persona("high_value_loyal", 0.10, 2.5, 90.0, 1.0, 3.0),
    Persona("regular", 0.25, 0.8, 40.0, 1.0, 4.0),
    Persona("bargain_hunter", 0.15, 1.5, 12.0, 1.0, 6.0),
    Persona("one_off", 0.35, 0.0, 35.0, 0.0, 8.0),
    Persona("churning", 0.15, 1.5, 50.0, 0.3, 3.0),
)
REFUND_RATE = 0.04
PEAK_DAY_OF_YEAR = 335  # seasonality peaks in early December


@dataclass(frozen=True)
class BehaviourShift:
    """From `at` on, customers of `persona` keep only `factor` of their purchases."""

    persona: str
    factor: float
    at: datetime

    def __post_init__(self) -> None:
        if not 0.0 <= self.factor <= 1.0:
            raise ValueError(f"shift factor must be in [0, 1], got {self.factor}")


@dataclass
class _Purchases:
    """Every purchase: its customer, day (from the log's start), amount, whether refunded."""

    owner: NDArray[np.int64]
    when: NDArray[np.float64]
    amount: NDArray[np.float64]
    refunded: NDArray[np.bool_]
    first: NDArray[np.bool_]
    """Whether it is its customer's first purchase (never thinned away)."""


def synthetic_events(
    customers: int,
    end: datetime | None = None,
    days: int = 730,
    events_per_customer: float | None = None,
    seed: int = 0,
    personas: tuple[Persona, ...] = PERSONAS,
    seasonality: float = 0.0,
    shift: BehaviourShift | None = None,
    first_customer: int = 0,
    first_event: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events in the CustomerEvent columns, ground truth customer_id -> persona).

    `events_per_customer`, when given, tops up sessions so the log has about
    that many events per customer (benchmarks ask for ~20). `seasonality` in
    [0, 1] thins purchases away from the December peak (0 = flat; 0.5 = the
    quietest month keeps a third of the peak's rate); `shift` thins one
    persona's purchases from a point in time (a drift scenario). Both draw from
    a separate random stream, so without them the log is unchanged.
    `first_customer` and `first_event` offset the ids (for logs written in parts).
    """
    if not 0.0 <= seasonality <= 1.0:
        raise ValueError(f"seasonality must be in [0, 1], got {seasonality}")
    if shift is not None and shift.persona not in {p.name for p in personas}:
        raise ValueError(f"unknown persona {shift.persona!r} in the shift")
    rng = np.random.default_rng(seed)
    end = end or datetime(2024, 12, 31, tzinfo=UTC)
    start = end - timedelta(days=days)
    shares = np.asarray([p.share for p in personas])
    persona = rng.choice(len(personas), size=customers, p=shares / shares.sum())
    bought = _purchases(rng, personas, persona, days)
    if seasonality > 0 or shift is not None:
        bought = _thinned(bought, np.random.default_rng([seed, 1]), personas, persona, start,
                          seasonality, shift)  # fmt: skip
    purchases = np.bincount(bought.owner, minlength=customers)
    r_owner = bought.owner[bought.refunded]
    r_when = np.minimum(
        bought.when[bought.refunded] + rng.uniform(1, 20, r_owner.size), days - 1e-6
    )
    r_amount = np.round(
        bought.amount[bought.refunded] * rng.uniform(0.2, 1.0, r_owner.size), 2
    ).clip(0.01)
    session_rate = np.asarray([p.sessions_per_purchase for p in personas])[persona]
    sessions = rng.poisson(session_rate * purchases)
    if events_per_customer is not None:
        target = max(0.0, events_per_customer - (bought.owner.size + r_owner.size) / customers)
        sessions = rng.poisson(np.full(customers, target))
    s_owner = np.repeat(np.arange(customers), sessions)
    s_when = rng.uniform(0, days, s_owner.size)
    parts = ((bought.owner, bought.when, bought.amount), (r_owner, r_when, r_amount),
             (s_owner, s_when, np.full(s_owner.size, np.nan)))  # fmt: skip
    events = _events(parts, start, first_customer, first_event)
    truth = pl.DataFrame(
        {
            "customer_id": [f"c{i + first_customer:08d}" for i in range(customers)],
            "persona": [personas[i].name for i in persona],
        }
    )
    return events, truth


def _purchases(
    rng: np.random.Generator, personas: tuple[Persona, ...], persona: NDArray[np.int64], days: int
) -> _Purchases:
    """A first purchase per customer, then Poisson repeats over the active span."""
    customers = len(persona)
    rate = np.asarray([p.purchases_per_month for p in personas])[persona] / 30.0
    active = np.asarray([p.active_share for p in personas])[persona]
    basket = np.asarray([p.basket_median for p in personas])[persona]
    first = rng.uniform(0, days * 0.8, size=customers)
    span = np.where(active > 0, (days - first) * active, 0.0)
    purchases = 1 + rng.poisson(rate * span)
    owner = np.repeat(np.arange(customers), purchases)
    offset = np.concatenate([np.zeros(1), np.cumsum(purchases)[:-1]]).astype(np.int64)
    index_in_customer = np.arange(owner.size) - offset[owner]
    when = np.where(
        index_in_customer == 0,
        first[owner],
        first[owner] + rng.uniform(0, 1, owner.size) * span[owner],
    )
    amount = np.round(rng.lognormal(np.log(basket[owner]), 0.5), 2).clip(0.5)
    refunded = rng.uniform(size=owner.size) < REFUND_RATE
    return _Purchases(owner, when, amount, refunded, index_in_customer == 0)


def _thinned(
    bought: _Purchases,
    aux: np.random.Generator,
    personas: tuple[Persona, ...],
    persona: NDArray[np.int64],
    start: datetime,
    seasonality: float,
    shift: BehaviourShift | None,
) -> _Purchases:
    """The purchases seasonality and a behaviour shift keep (first purchases always)."""
    size = bought.owner.size
    keep = np.ones(size, dtype=bool)
    if seasonality > 0:
        year_start = datetime(start.year, 1, 1, tzinfo=UTC)
        day_of_year = (bought.when + (start - year_start).total_seconds() / 86_400) % 365.25
        phase = 2 * np.pi * (day_of_year - PEAK_DAY_OF_YEAR) / 365.25
        weight = (1 + seasonality * np.cos(phase)) / (1 + seasonality)
        keep &= aux.uniform(size=size) < weight
    if shift is not None:
        index = [p.name for p in personas].index(shift.persona)
        shift_day = (shift.at - start).total_seconds() / 86_400
        affected = (persona[bought.owner] == index) & (bought.when >= shift_day)
        keep &= ~affected | (aux.uniform(size=size) < shift.factor)
    keep[bought.first] = True
    return _Purchases(bought.owner[keep], bought.when[keep], bought.amount[keep],
                      bought.refunded[keep], bought.first[keep])  # fmt: skip


def _events(
    parts: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...],
    start: datetime,
    first_customer: int,
    first_event: int,
) -> pl.DataFrame:
    """Purchases, refunds and sessions (owner, day, amount) as CustomerEvent rows."""
    all_owner = np.concatenate([owner for owner, _, _ in parts])
    kinds = np.concatenate([np.full(owner.size, kind, np.int8)
                            for kind, (owner, _, _) in enumerate(parts)])  # fmt: skip
    all_when = np.concatenate([when for _, when, _ in parts])
    all_amount = np.concatenate([amount for _, _, amount in parts])
    micros = (all_when * 86_400e6).astype(np.int64)
    base = int(start.timestamp() * 1e6)
    frame = pl.DataFrame(
        {"owner": all_owner, "kind": kinds, "t": micros + base, "amount": all_amount}
    ).with_row_index("n")
    customer = pl.format("c{}", (pl.col("owner") + first_customer).cast(pl.String).str.zfill(8))
    return frame.select(
        pl.format("e{}", pl.col("n") + first_event).alias("event_id"),
        customer.alias("customer_id"),
        pl.col("kind")
        .replace_strict({0: "purchase", 1: "refund", 2: "session"}, return_dtype=pl.String)
        .alias("type"),
        pl.col("t").cast(pl.Datetime("us", "UTC")).alias("occurred_at"),
        pl.when(pl.col("kind") == 2).then(None).otherwise(pl.col("amount")).alias("amount"),
    )


def write_synthetic_parquet(
    directory: Path,
    customers: int,
    events_per_customer: float | None = None,
    seed: int = 0,
    chunk: int = 500_000,
) -> int:
    """A synthetic log as Parquet files of `chunk` customers each; returns the event count.

    Each file is one `synthetic_events` call (seed + file number), with customer
    and event numbers following on from the previous file's, so logs larger
    than memory can be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for number, start in enumerate(range(0, customers, chunk)):
        events, _ = synthetic_events(
            min(chunk, customers - start), events_per_customer=events_per_customer,
            seed=seed + number, first_customer=start, first_event=written,
        )  # fmt: skip
        events.write_parquet(directory / f"events-{number:04d}.parquet")
        written += events.height
    return written


MALFORMED_KINDS = (
    "broken_json",
    "naive_timestamp",
    "negative_amount",
    "missing_amount",
    "unknown_type",
    "missing_key",
    "key_mismatch",
    "not_an_object",
)


def malformed(body: dict[str, object], kind: str) -> tuple[bytes | None, bytes]:
    """A (key, value) message derived from a valid event body that the worker must reject."""
    key: bytes | None = str(body["customer_id"]).encode()
    bad = dict(body)
    if kind == "broken_json":
        return key, json.dumps(bad).encode()[:-3]
    if kind == "naive_timestamp":
        bad["occurred_at"] = str(bad["occurred_at"]).replace("Z", "").replace("+00:00", "")
    elif kind == "negative_amount":
        bad["type"], bad["amount"] = "purchase", -abs(float(str(bad.get("amount") or 1.0)))
    elif kind == "missing_amount":
        bad["type"] = "purchase"
        bad.pop("amount", None)
    elif kind == "unknown_type":
        bad["type"] = "teleport"
    elif kind == "missing_key":
        key = None
    elif kind == "key_mismatch":
        key = b"someone-else"
    elif kind == "not_an_object":
        return key, json.dumps([bad]).encode()
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return key, json.dumps(bad).encode()
