"""`rescorer worker` against the real broker: the behaviours issue #4 names, end to end."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from offline.kafka_io import publish_model
from rescorer.devkafka import ProvidedBroker
from tests.support.toy_model import (
    AT_RISK,
    CENTROIDS,
    CHAMPIONS,
    REGULAR,
    toy_model,
    toy_model_with_traits,
)
from tests.support.worker_harness import (
    Stack,
    WorkerProcess,
    clock_tick,
    event,
    produce,
    produce_raw,
    read_all,
    wait_until,
)

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def running(
    kafka: ProvidedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, WorkerProcess]]:
    import uuid

    stack = Stack(kafka.bootstrap_servers, f"w{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("w"))
    publish_model(stack.settings(), toy_model())
    worker = WorkerProcess(stack, "a")
    try:
        worker.wait_for_log("model v1 loaded")
        worker.wait_for_log("customers restored")
        yield stack, worker
        assert worker.alive(), worker.tail()
    finally:
        worker.stop()


def changes_of(stack: Stack, customer: str) -> list[dict[str, Any]]:
    return [c for c in read_all(stack, stack.topics.changes) if c["customer_id"] == customer]


def latest_assignment(stack: Stack, customer: str) -> dict[str, Any] | None:
    found = [a for a in read_all(stack, stack.topics.assignments) if a["customer_id"] == customer]
    return found[-1] if found else None


def test_a_burst_of_purchases_moves_a_customer_to_a_higher_value_segment(
    running: tuple[Stack, WorkerProcess],
) -> None:
    stack, worker = running
    produce(stack, [event("b-0", "burst", T0)])
    first = wait_until("a first assignment", lambda: changes_of(stack, "burst"), worker)
    assert [(c["previous_segment_id"], c["segment_id"]) for c in first] == [(None, REGULAR)]
    produce(stack, [event(f"b-{i}", "burst", T0 + timedelta(hours=i), 80.0) for i in range(1, 7)])
    moved = wait_until(
        "the burst to move the customer",
        lambda: [c for c in changes_of(stack, "burst") if c["segment_id"] == CHAMPIONS],
        worker,
    )
    assert moved[0]["previous_segment_id"] == REGULAR
    assert moved[0]["reason"] == "event"
    assert moved[0]["segment_name"] == "Champions"
    # The burst may arrive in one batch or several; the move happens once either way.
    assert len(moved) == 1
    final = wait_until(
        "the whole burst",
        lambda: (a := latest_assignment(stack, "burst")) and a["features"]["frequency"] == 7 and a,
        worker,
    )
    assert final["segment_id"] == CHAMPIONS


def test_a_silent_customer_is_moved_by_the_sweep_with_reason_recency(
    running: tuple[Stack, WorkerProcess],
) -> None:
    stack, worker = running
    produce(stack, [event(f"s-{i}", "silent", T0 + timedelta(hours=i), 80.0) for i in range(7)])
    wait_until(
        "the silent customer to become a champion",
        lambda: any(c["segment_id"] == CHAMPIONS for c in changes_of(stack, "silent")),
        worker,
    )
    clock_tick(stack, T0 + timedelta(days=200), "silence")  # others buy; this one does not
    change = wait_until(
        "the sweep to move the silent customer",
        lambda: [c for c in changes_of(stack, "silent") if c["reason"] == "recency"],
        worker,
    )[0]
    assert (change["previous_segment_id"], change["segment_id"]) == (CHAMPIONS, AT_RISK)
    assert change["features"]["recency_days"] == pytest.approx(200 - 6 / 24)
    assert change["trigger_event_id"] is None


def test_duplicates_change_nothing(running: tuple[Stack, WorkerProcess]) -> None:
    stack, worker = running
    first = [event(f"d-{i}", "dup", T0 + timedelta(days=300, hours=i), 20.0) for i in range(3)]
    produce(stack, first)
    wait_until("the first delivery", lambda: latest_assignment(stack, "dup"), worker)
    produce(stack, first)  # redelivered: same event ids
    produce(stack, [event("d-last", "dup", T0 + timedelta(days=300, hours=5), 5.0)])
    final = wait_until(
        "the marker event",
        lambda: (a := latest_assignment(stack, "dup")) and a["features"]["frequency"] == 4 and a,
        worker,
    )
    assert final["features"]["monetary"] == pytest.approx(65.0)
    assert len(changes_of(stack, "dup")) == 1  # the first assignment only


def test_malformed_events_reach_the_dead_letter_topic_and_the_worker_stays_up(
    running: tuple[Stack, WorkerProcess],
) -> None:
    stack, worker = running
    good = event("m-ok", "after-bad", T0 + timedelta(days=300))
    naive = {**good, "event_id": "m-naive", "occurred_at": "2024-03-01T12:00:00"}
    negative = {**good, "event_id": "m-neg", "amount": -5}

    bad: list[tuple[bytes | None, bytes]] = [
        (b"after-bad", b"{not json"),
        (b"after-bad", json.dumps(naive).encode()),
        (b"after-bad", json.dumps(negative).encode()),
        (None, json.dumps({**good, "event_id": "m-nokey"}).encode()),
        (b"someone-else", json.dumps({**good, "event_id": "m-wrongkey"}).encode()),
        (b"after-bad", b"\xff\xfe\x00"),
    ]
    produce_raw(stack, bad)
    produce(stack, [good])
    letters = wait_until(
        "six dead letters",
        lambda: (d := read_all(stack, stack.topics.dead_letters)) and len(d) >= 6 and d,
        worker,
    )
    assert len(letters) == 6
    kinds = sorted(letter["error_type"] for letter in letters)
    assert kinds == sorted(
        [
            "invalid_json",
            "invalid_event",
            "invalid_event",
            "missing_key",
            "key_mismatch",
            "invalid_json",
        ]
    )
    assert all(letter["error"] and letter["topic"] == stack.topics.events for letter in letters)
    wait_until("the valid event after them", lambda: latest_assignment(stack, "after-bad"), worker)
    assert worker.alive()


def test_a_promoted_model_changes_assignments_with_reason_model_update(
    running: tuple[Stack, WorkerProcess],
) -> None:
    stack, worker = running
    produce(stack, [event("u-0", "upd", T0 + timedelta(days=300))])
    wait_until("a regular customer", lambda: changes_of(stack, "upd"), worker)
    assert changes_of(stack, "upd")[0]["segment_id"] == REGULAR
    # v2 moves the "Regular" centroid far away: its members belong elsewhere now.
    v2 = toy_model(version=2, centroids=(CENTROIDS[0], (9.0, 9.0, 9.0), CENTROIDS[2]))
    publish_model(stack.settings(), v2)
    worker.wait_for_log("switched to model v2", timeout=10)
    change = wait_until(
        "a model_update change",
        lambda: [c for c in changes_of(stack, "upd") if c["model_version"] == 2],
        worker,
        timeout=30,
    )[0]
    assert change["reason"] == "model_update"
    assert change["previous_segment_id"] == REGULAR


def test_a_hostile_model_is_rejected_and_the_current_one_kept(
    running: tuple[Stack, WorkerProcess],
) -> None:
    stack, worker = running
    from kafka import KafkaProducer

    before = worker.metrics()['rescorer_models_rejected_total{reason="invalid"}']
    good = toy_model(version=3).model_dump(mode="json")
    wrong_dimensions = json.loads(json.dumps(good))
    wrong_dimensions["segments"][0]["centroid"] = [1.0, 2.0]
    unknown_feature = json.loads(json.dumps(good))
    unknown_feature["features"]["names"] = ["recency_days", "frequency", "clicks"]
    hostile = [
        pickle.dumps(good),
        b'{"version": 3}',
        json.dumps(wrong_dimensions).encode(),
        json.dumps(good).replace("0.3", "NaN", 1).encode(),
        json.dumps(unknown_feature).encode(),
        json.dumps({**good, "package_version": "x" * 900_000}).encode(),
    ]
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, max_request_size=2_000_000)
    for artifact in hostile:
        producer.send(stack.topics.models, key=b"active", value=artifact)
    producer.flush()
    producer.close()
    wait_until(
        "every hostile artifact to be rejected",
        lambda: worker.log().count("rejected a model") >= len(hostile),
        worker, timeout=30,
    )  # fmt: skip
    assert worker.metrics()['rescorer_models_rejected_total{reason="invalid"}'] - before == len(
        hostile
    )
    produce(stack, [event("h-0", "after-hostile", T0 + timedelta(days=300))])
    assignment = wait_until(
        "an assignment after the hostile model",
        lambda: latest_assignment(stack, "after-hostile"),
        worker,
    )
    assert assignment["model_version"] == 2


def test_metrics_count_what_the_worker_did(running: tuple[Stack, WorkerProcess]) -> None:
    stack, worker = running
    series = worker.metrics()
    assert series['rescorer_events_processed_total{outcome="applied"}'] > 20
    assert series['rescorer_events_processed_total{outcome="duplicate"}'] >= 3
    assert series['rescorer_events_rejected_total{reason="key_mismatch"}'] == 1
    assert series['rescorer_events_rejected_total{reason="invalid_event"}'] == 2
    assert series["rescorer_model_version"] == 2
    assert series['rescorer_models_rejected_total{reason="invalid"}'] >= 2
    changes = {k: v for k, v in series.items() if k.startswith("rescorer_segment_changes_total")}
    assert any('reason="model_update"' in k for k in changes)
    assert any('reason="recency"' in k for k in changes)
    emitted = len(read_all(stack, stack.topics.changes))
    assert sum(changes.values()) == emitted
    populations = {k: v for k, v in series.items() if k.startswith("rescorer_segment_population")}
    latest = {
        a["customer_id"]: a["segment_name"] for a in read_all(stack, stack.topics.assignments)
    }
    for name in set(latest.values()):
        expected = sum(1 for n in latest.values() if n == name)
        assert populations[f'rescorer_segment_population{{segment="{name}"}}'] == expected


def test_a_model_with_traits_sends_band_changes_in_order_and_assignments_with_traits(
    running: tuple[Stack, WorkerProcess],
) -> None:
    """Runs last: it moves the clock years ahead. A customer who bought on three days and
    then fell silent goes Low -> Medium -> High on risk-band-changes, with reason recency."""
    stack, worker = running
    publish_model(stack.settings(), toy_model_with_traits(version=4))
    worker.wait_for_log("switched to model v4", timeout=30)
    start = T0 + timedelta(days=700)
    produce(stack, [event(f"r-{d}", "risky", start + timedelta(days=d), 30.0) for d in (0, 4, 8)])

    def crossings() -> list[dict[str, Any]]:
        return [
            c for c in read_all(stack, stack.topics.band_changes) if c["customer_id"] == "risky"
        ]

    wait_until("a first band", crossings, worker)
    for day in (30, 60, 120, 240, 480, 900):  # the sweep finds each crossing on its day
        clock_tick(stack, start + timedelta(days=day), f"risk-{day}")
    seen = wait_until(
        "the high band", lambda: (c := crossings()) and c[-1]["band"] == "high" and c, worker
    )
    assert [(c["previous_band"], c["band"]) for c in seen] == [
        (None, "low"),
        ("low", "medium"),
        ("medium", "high"),
    ]
    assert [c["reason"] for c in seen[1:]] == ["recency", "recency"]
    assert seen[0]["trigger_event_id"] in {"r-0", "r-4", "r-8"}  # one batch or several
    assert seen[-1]["trigger_event_id"] is None
    assert seen[-1]["p_alive"] < seen[0]["p_alive"]
    final = latest_assignment(stack, "risky")
    assert final is not None and final["schema_version"] == 3
    assert final["traits"]["band"] == "high" and final["traits"]["horizon_days"] == 90.0
    series = worker.metrics()
    bands = {k: v for k, v in series.items() if k.startswith("rescorer_segment_risk_band_pop")}
    assert sum(bands.values()) >= 1
    emitted = read_all(stack, stack.topics.band_changes)
    counted = sum(v for k, v in series.items() if k.startswith("rescorer_risk_band_changes_total"))
    assert counted == len(emitted)
