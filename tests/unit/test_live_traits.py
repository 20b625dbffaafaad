"""Live traits: the stream's purchase summary is the trainer's, exact under redelivery,
worker-shaped processing gives replay's traits, and band crossings come when the band moves."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offline.cdnow import convert_cdnow
from offline.customer_table import Horizon, customer_table
from offline.traits import summary_at
from schemas.events import CustomerEvent, EventType
from schemas.model import SegmentModel
from scoring import bgnbd
from scoring.customer_record import CustomerRecord
from scoring.customer_state import CustomerState
from scoring.reassignment import RescoreConfig, Rescorer
from scoring.replay import replay
from scoring.traits import BAND_ORDER, BandThresholds, TraitModel, crossing_age, traits
from tests.support.toy_model import toy_model_with_traits, toy_traits

CDNOW = Path(__file__).parents[1] / "data" / "cdnow_sample.csv"
AS_OF = datetime(1998, 6, 30, 12, tzinfo=UTC)
START = datetime(2024, 1, 1, 12, tzinfo=UTC)


def cdnow_events() -> list[CustomerEvent]:
    frame = convert_cdnow(CDNOW).sort("occurred_at", maintain_order=True)
    return [
        CustomerEvent(
            event_id=row["event_id"],
            customer_id=row["customer_id"],
            type=EventType(row["type"]),
            occurred_at=row["occurred_at"],
            amount=row["amount"],
        )
        for row in frame.iter_rows(named=True)
    ]


def purchase(n: int, customer: str, at: datetime, amount: float = 20.0) -> CustomerEvent:
    return CustomerEvent(
        event_id=f"{customer}-{n}", customer_id=customer, type=EventType.PURCHASE,
        occurred_at=at, amount=amount,
    )  # fmt: skip


def test_the_live_purchase_summary_is_the_trainers_on_cdnow() -> None:
    """Folded event by event over 78 weeks (a 365-day window, so most repeat days
    retire from it on the way), every customer's (x, t_x, T, m) equals the table's."""
    states: dict[str, CustomerState] = {}
    for event in cdnow_events():
        state = states.setdefault(event.customer_id, CustomerState(window_days=365))
        state.apply(event, event.occurred_at)
    table = customer_table([convert_cdnow(CDNOW).lazy()], Horizon(AS_OF, 365))
    offline = summary_at(table, AS_OF)
    want = np.column_stack([offline.x, offline.t_x, offline.T])
    for pruned in (False, True):  # as the events left it, and after the sweep pruned it
        if pruned:
            for state in states.values():
                state.prune(AS_OF)
        live = [states[c].lifetime(AS_OF) for c in offline.customer_id]
        got = np.asarray([(v.x, v.t_x, v.T, v.mean_value) for v in live if v is not None])
        assert len(got) == len(want)
        np.testing.assert_array_equal(got[:, :3], want)
        np.testing.assert_allclose(got[:, 3], offline.m, rtol=1e-12, atol=1e-9)
    assert sum(s.retired_days for s in states.values()) > 1000  # the window did retire days


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, float]]:
    """Purchase times (hours after START, over about two years) and amounts."""
    n = draw(st.integers(1, 25))
    hours = sorted(draw(st.lists(st.integers(0, 24 * 800), min_size=n, max_size=n)))
    return [(h, draw(st.sampled_from([5.0, 19.99, 120.5]))) for h in hours]


@given(history=histories(), again=st.lists(st.integers(0, 10**6), max_size=40))
@settings(max_examples=60, deadline=None)
def test_redelivered_events_old_or_recent_leave_the_traits_unchanged(
    history: list[tuple[int, float]], again: list[int]
) -> None:
    """Each event is delivered once in order; then, interleaved, again (any earlier
    event, inside or long outside the window): the summary ends the same."""
    events = [purchase(n, "c", START + timedelta(hours=h), a) for n, (h, a) in enumerate(history)]
    once, twice = CustomerState(window_days=90), CustomerState(window_days=90)
    for n, event in enumerate(events):
        once.apply(event, event.occurred_at)
        twice.apply(event, event.occurred_at)
        for pick in again[n :: len(events)]:
            twice.apply(events[pick % (n + 1)], event.occurred_at)
    end = events[-1].occurred_at + timedelta(days=400)
    for state in (once, twice):
        state.prune(end)
        for pick in again:  # redelivered after everything retired from the window
            state.apply(events[pick % len(events)], end)
    model = TraitModel.of(toy_traits())
    a, b = once.lifetime(end), twice.lifetime(end)
    assert a == b and a is not None
    found = [traits(model, v.x, v.t_x, v.T, v.mean_value) for v in (a, b)]
    assert found[0] == found[1]
    assert a.x == len({(START + timedelta(hours=h)).date() for h, _ in history}) - 1


def test_the_crossing_age_is_where_the_band_moves() -> None:
    model = TraitModel.of(toy_traits())
    bands = BandThresholds()
    x, t_x = np.array([1.0, 4.0, 12.0]), np.array([20.0, 60.0, 300.0])
    codes = np.zeros(3, dtype=np.int64)
    for code in range(2):
        age = crossing_age(model, bands, codes, x, t_x)
        after = traits(model, x, t_x, np.ceil(age), np.zeros(3)).churn_risk
        before = traits(model, x, t_x, np.ceil(age) - 1, np.zeros(3)).churn_risk
        assert (bands.codes(after) > code).all() and (bands.codes(before) <= code).all()
        codes = np.full(3, code + 1)
    assert np.isinf(crossing_age(model, bands, np.full(3, 2), x, t_x)).all()
    assert np.isinf(crossing_age(model, bands, np.zeros(1), [0.0], [0.0])).all()  # no repeat


def silent_customer() -> list[CustomerEvent]:
    return [purchase(n, "quiet", START + timedelta(days=d)) for n, d in enumerate([0, 9, 20, 31])]


def drive_daily(model: SegmentModel, days: int) -> tuple[Rescorer, dict[str, CustomerRecord], list]:
    """Process `silent_customer`, then sweep once a day (wall clock at noon) for `days`."""
    config = RescoreConfig(clock="wall", recheck_period=timedelta(days=60))
    rescorer = Rescorer(model, config)
    records: dict[str, CustomerRecord] = {}

    def lookup(key: str, _p: int) -> CustomerRecord | None:
        return records.get(key)

    crossings = []
    for event in silent_customer():
        result = rescorer.process([(0, event)], lookup, event.occurred_at)
        records.update(result.records)
        crossings += result.band_changes
    for day in range(32, days):
        now = START + timedelta(days=day)
        result = rescorer.sweep(0, lookup, now, sys.maxsize)
        records.update(result.records)
        crossings += result.band_changes
    return rescorer, records, crossings


def test_a_silent_customer_crosses_each_band_exactly_when_its_band_moves() -> None:
    model = toy_model_with_traits()
    _, _, crossings = drive_daily(model, 900)
    trait_model = TraitModel.of(toy_traits())
    bands = BandThresholds()
    state = CustomerState(window_days=365)
    bought = {event.occurred_at: event for event in silent_customer()}
    expected = []
    previous = None
    for day in [0, 9, 20, 31, *range(32, 900)]:
        at = START + timedelta(days=day)
        if at in bought:
            state.apply(bought[at], at)
        life = state.lifetime(at)
        assert life is not None
        risk = traits(trait_model, life.x, life.t_x, life.T, life.mean_value).churn_risk
        band = BAND_ORDER[int(bands.codes(risk))].value
        if band != previous:
            expected.append((START.date() + timedelta(days=day), previous, band))
            previous = band
    seen = [
        (c.as_of.date(), None if c.previous_band is None else c.previous_band.value, c.band.value)
        for c in crossings
    ]
    assert seen == expected
    assert [b for _, _, b in seen] == ["low", "medium", "high"]  # both thresholds crossed
    assert {c.reason.value for c in crossings[1:]} == {"recency"}


def test_band_crossings_are_scheduled_not_found_by_daily_rechecks() -> None:
    """Without a crossing in the due time the sweep would see the band move only at the
    next recheck (60 days here): each crossing is emitted on its own day."""
    rescorer, records, crossings = drive_daily(toy_model_with_traits(), 900)
    assert len(crossings) == 3
    record = records["quiet"]
    assert record.band == "high" and record.repeat_days == 3
    assert record.p_alive is not None and 0.0 < record.p_alive < 0.5
    assert rescorer.current_assignments(0, [("quiet", record)])[0].traits is not None


def worker_like(
    events: list[CustomerEvent], model: SegmentModel, batch: int, limit: int, partitions: int
) -> dict[str, float]:
    """The core driven as the worker drives it: several partitions, batches of `batch`,
    sweep slices of at most `limit` customers, records through their changelog form."""
    rescorer = Rescorer(model)
    table: dict[str, bytes] = {}

    def lookup(key: str, _p: int) -> CustomerRecord | None:
        data = table.get(key)
        return None if data is None else CustomerRecord.loads(data)

    def keep(records: dict[str, CustomerRecord]) -> None:
        table.update((key, record.dumps()) for key, record in records.items())

    def part(key: str) -> int:
        return sum(key.encode()) % partitions

    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        now = chunk[-1].occurred_at
        keep(rescorer.process([(part(e.customer_id), e) for e in chunk], lookup, now).records)
        keep(rescorer.sweep_round(sorted(rescorer.shards), lookup, now, limit).records)
    # A model swap re-scores (and emits) every customer at the clock: the traits each
    # customer's state gives at the end, as the worker sends them.
    rescorer.set_model(model.model_copy(update={"version": model.version + 1}))
    end = events[-1].occurred_at
    for shard in rescorer.shards.values():
        shard.watermark = end
    final = rescorer.sweep_round(sorted(rescorer.shards), lookup, end, sys.maxsize)
    out: dict[str, float] = {}
    for a in final.assignments:
        assert a.traits is not None and a.as_of == end
        out[a.customer_id] = a.traits.p_alive
        out[a.customer_id + "/e"] = a.traits.expected_purchases
    return out


@pytest.fixture(scope="module")
def sample_events() -> list[CustomerEvent]:
    events = cdnow_events()
    keep = {e.customer_id for e in events[:600]}
    return [e for e in events if e.customer_id in keep]


@given(batch=st.integers(1, 400), limit=st.integers(1, 200), partitions=st.integers(1, 3))
@settings(max_examples=6, deadline=None)
def test_worker_shaped_processing_gives_replays_traits(
    sample_events: list[CustomerEvent], batch: int, limit: int, partitions: int
) -> None:
    model = toy_model_with_traits()
    replayed = replay(sample_events, model)
    expected: dict[str, float] = {}
    for a in replayed.assignments:
        assert a.traits is not None
        expected[a.customer_id] = a.traits.p_alive
        expected[a.customer_id + "/e"] = a.traits.expected_purchases
    got = worker_like(sample_events, model, batch, limit, partitions)
    assert got.keys() == expected.keys()
    diff = max(abs(got[k] - expected[k]) for k in expected)
    assert diff <= 1e-9


def test_older_records_gain_traits_at_their_next_evaluation() -> None:
    """A record written before the traits (format 2: no band) gets its first band when
    re-scored under a model with traits, as a change from none."""
    model = toy_model_with_traits()
    rescorer = Rescorer(model, RescoreConfig(clock="wall"))
    records: dict[str, CustomerRecord] = {}
    first = silent_customer()[:2]
    result = rescorer.process([(0, e) for e in first], lambda k, p: records.get(k), START)
    records.update(result.records)
    record = records["quiet"]
    record.band = record.p_alive = record.repeat_days = None  # as a format-2 record loads
    rescorer.shard(0).due.reschedule_all(0)
    later = rescorer.sweep(0, lambda k, p: records.get(k), START + timedelta(days=10), 10)
    assert [c.previous_band for c in later.band_changes] == [None]
    assert later.assignments and later.assignments[0].traits is not None


def test_p_alive_falls_with_silence_in_closed_form() -> None:
    params = TraitModel.of(toy_traits()).bgnbd
    T = np.arange(40, 400, 30, dtype=np.float64)
    alive = bgnbd.p_alive(params, 3, 31.0, T)
    assert (np.diff(alive) < 0).all()
    back = bgnbd.age_at_p_alive(params, alive, 3, 31.0)
    np.testing.assert_allclose(back, T, rtol=1e-9)
