"""The rescorer:// store's bookkeeping: what reaches disk, with which offset, and when.

The store runs inside Faust, but its logic needs only its table's changelog
name, the assignment and our changelog probe: those are faked here (the probe
is ours; Kafka is in tests/integration/test_durable_store.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams.state.changelog_probe import ChangelogRecord
from streams.state.context import DataDirInUse, StoreContext
from streams.state.log_file import Position, fingerprint, read_log
from streams.state.store import DurableStore
from streams.state.trust import Changelog, WipeReason

TOPIC = "app-customers-changelog"


class FakeProbe:
    """Answers as a changelog holding exactly what was committed (or what it is told)."""

    def __init__(self) -> None:
        self.ends: dict[int, int] = {}
        self.starts: dict[int, int] = {}

    async def look(
        self, positions: Mapping[tuple[str, int], Position | None]
    ) -> dict[tuple[str, int], Changelog]:
        out = {}
        for (topic, partition), position in positions.items():
            end = self.ends.get(partition, 0 if position is None else position.offset + 1)
            at = None if position is None else (position.offset, position.fingerprint)
            out[(topic, partition)] = Changelog(self.starts.get(partition, 0), end, at)
        return out

    async def stop(self) -> None:
        pass


def new_store(
    directory: Path, probe: FakeProbe, wipes: list[Any], standbys: set[TP], claim: Any = None
) -> Any:
    """A customers store; `claim` set: in exactly-once mode."""
    context = StoreContext(directory, "app", probe, lambda *args: wipes.append(args))  # type: ignore[arg-type]
    context.claim = claim
    table = SimpleNamespace(
        name="customers", changelog_topic=SimpleNamespace(get_topic_name=lambda: TOPIC)
    )
    app = SimpleNamespace(assignor=SimpleNamespace(assigned_standbys=lambda: standbys))
    return DurableStore(
        "rescorer://", app, table, table_name="customers", options={"rescorer_state": context}
    )


def event(partition: int, offset: int, key: bytes, value: bytes | None) -> Any:
    return SimpleNamespace(
        message=SimpleNamespace(partition=partition, offset=offset, key=key, value=value)
    )


def assign(store: Any, *partitions: int) -> None:
    tps = {TP(TOPIC, p) for p in partitions}
    asyncio.run(store.on_rebalance(tps, set(), tps))


def test_a_put_is_in_memory_at_once_and_on_disk_once_acknowledged(tmp_path: Path) -> None:
    store = new_store(tmp_path, FakeProbe(), [], set())
    assign(store, 0)
    store.put("a", 0, b"1")
    assert store.get("a", 0) == b"1"
    assert read_log(tmp_path / "customers" / "p0.log").entries == {}
    store.seal()
    store.put("b", 0, b"2")  # after the flush started: not covered by its offsets
    store.commit({0: Position(5, fingerprint(b"a", b"1"))})
    on_disk = read_log(tmp_path / "customers" / "p0.log")
    assert on_disk.entries == {"a": b"1"}
    assert on_disk.position == Position(5, fingerprint(b"a", b"1"))
    assert store.persisted_offset(TP(TOPIC, 0)) == 5


def test_a_reopened_store_reads_its_partitions_back(tmp_path: Path) -> None:
    probe = FakeProbe()
    store = new_store(tmp_path, probe, [], set())
    assign(store, 0, 1)
    store.put("a", 0, b"1")
    store.put("b", 1, b"2")
    store.seal()
    store.commit({0: Position(3, 1), 1: Position(8, 2)})
    asyncio.run(store.on_stop())
    again = new_store(tmp_path, probe, [], set())
    assign(again, 0, 1)
    assert again.get("a", 0) == b"1" and again.get("b", 1) == b"2"
    assert again.get("a", 1) is None  # addressed by partition
    assert [again.persisted_offset(TP(TOPIC, p)) for p in (0, 1)] == [3, 8]


def test_recovery_and_standby_records_are_written_with_their_offsets(tmp_path: Path) -> None:
    standby = {TP(TOPIC, 1)}
    probe = FakeProbe()
    probe.starts = {0: 10, 1: 4}  # the changelogs' first offsets
    store = new_store(tmp_path, probe, [], standby)
    assign(store, 0, 1)
    store.apply_changelog_batch(
        [event(0, 10, b"a", b"1"), event(1, 4, b"x", b"9"), event(0, 11, b"a", b"2")],
        to_key=None,
        to_value=None,
    )
    assert store.get("a", 0) == b"2"
    assert store.get("x", 1) is None  # a standby partition is on disk only
    assert read_log(tmp_path / "customers" / "p1.log").entries == {"x": b"9"}
    assert store.persisted_offset(TP(TOPIC, 0)) == 11
    assert store.persisted_offset(TP(TOPIC, 1)) == 4


def test_a_standby_that_becomes_active_loads_its_file(tmp_path: Path) -> None:
    standbys: set[TP] = {TP(TOPIC, 1)}
    store = new_store(tmp_path, FakeProbe(), [], standbys)
    assign(store, 1)
    store.apply_changelog_batch([event(1, 0, b"x", b"9")], to_key=None, to_value=None)
    standbys.clear()
    assign(store, 1)
    assert store.get("x", 1) == b"9"


def test_a_file_ahead_of_the_changelog_is_wiped_and_reported(tmp_path: Path) -> None:
    probe = FakeProbe()
    store = new_store(tmp_path, probe, [], set())
    assign(store, 0)
    store.put("a", 0, b"1")
    store.seal()
    store.commit({0: Position(40, 1)})
    asyncio.run(store.on_stop())
    probe.ends[0] = 12  # the changelog was recreated and holds twelve records
    wipes: list[Any] = []
    again = new_store(tmp_path, probe, wipes, set())
    assign(again, 0)
    assert again.get("a", 0) is None
    assert again.persisted_offset(TP(TOPIC, 0)) is None
    assert [(table, p, reason) for table, p, reason, _ in wipes] == [
        ("customers", 0, WipeReason.AHEAD)
    ]


def test_a_lost_partition_is_let_go(tmp_path: Path) -> None:
    store = new_store(tmp_path, FakeProbe(), [], set())
    assign(store, 0, 1)
    store.put("a", 1, b"1")
    assign(store, 0)
    assert store.get("a", 1) is None
    assert store.persisted_offset(TP(TOPIC, 1)) is None
    assert (tmp_path / "customers" / "p1.log").exists()  # kept for a later return


def test_a_late_recovery_batch_for_a_partition_let_go_changes_nothing(tmp_path: Path) -> None:
    """A rebalance interrupted a recovery: what it had buffered arrives after the release."""
    store = new_store(tmp_path, FakeProbe(), [], set())
    assign(store, 0, 1)
    assign(store, 0)
    store.apply_changelog_batch([event(1, 70, b"x", b"9")], to_key=None, to_value=None)
    assign(store, 0, 1)  # back, with the file as it was: empty
    assert store.get("x", 1) is None
    assert store.persisted_offset(TP(TOPIC, 1)) is None  # recovery replays it all
    assert read_log(tmp_path / "customers" / "p1.log").entries == {}


def test_one_worker_per_data_directory(tmp_path: Path) -> None:
    first = StoreContext(tmp_path, "app", FakeProbe())  # type: ignore[arg-type]
    first.lock()
    second = StoreContext(tmp_path, "app", FakeProbe())  # type: ignore[arg-type]
    with pytest.raises(DataDirInUse, match="in use by worker pid"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()


def test_records_at_or_before_the_partitions_position_change_nothing(tmp_path: Path) -> None:
    """A recovery buffer applied late, after later records: the store does not go back."""
    probe = FakeProbe()
    probe.starts = {0: 9}
    store = new_store(tmp_path, probe, [], set())
    assign(store, 0)
    store.apply_changelog_batch(
        [event(0, 9, b"c", b"0"), event(0, 10, b"a", b"1"), event(0, 11, b"a", b"2")],
        to_key=None,
        to_value=None,
    )
    store.apply_changelog_batch(
        [event(0, 9, b"b", b"0"), event(0, 11, b"a", b"2"), event(0, 12, b"a", b"3")],
        to_key=None,
        to_value=None,
    )
    assert store.get("a", 0) == b"3"
    assert store.get("b", 0) is None  # offset 9 was before the store's position
    assert store.persisted_offset(TP(TOPIC, 0)) == 12
    assert read_log(tmp_path / "customers" / "p0.log").entries == {"a": b"3", "c": b"0"}


def test_a_stream_that_begins_past_what_a_new_store_lacks_is_left_to_the_catch_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Faust's standby reading began at the changelog's end, not at a new store's start:
    applied, the file would have claimed offsets it never held (the handover scenario
    lost a step's customers that way). It is not applied, nor anything after it, until
    the catch-up reads from where the store really is."""
    standbys = {TP(TOPIC, 0)}
    store = new_store(tmp_path, FakeProbe(), [], standbys)
    assign(store, 0)  # a new store: the changelog starts at 0
    store.apply_changelog_batch([event(0, 680, b"late", b"1")], to_key=None, to_value=None)
    store.apply_changelog_batch([event(0, 681, b"late", b"2")], to_key=None, to_value=None)
    assert store.persisted_offset(TP(TOPIC, 0)) is None
    assert read_log(tmp_path / "customers" / "p0.log").entries == {}
    assert "began at offset 680, past offset 0" in caplog.text
    records = [ChangelogRecord(0, b"early", b"0"), ChangelogRecord(681, b"late", b"2")]
    store.apply(0, records, read_from=0)  # the catch-up: everything from offset 0
    standbys.clear()
    assign(store, 0)  # taken: the file is whole
    assert store.get("early", 0) == b"0" and store.get("late", 0) == b"2"
    assert store.persisted_offset(TP(TOPIC, 0)) == 681


def test_a_stream_must_begin_where_a_store_with_a_position_stands(tmp_path: Path) -> None:
    """At each rebalance Faust positions its streams anew: one that continues the store
    (re-reading its last record included) is applied, one that skips records is not."""
    store = new_store(tmp_path, FakeProbe(), [], {TP(TOPIC, 0)})
    assign(store, 0)
    store.apply_changelog_batch([event(0, 0, b"a", b"1")], to_key=None, to_value=None)
    assign(store, 0)
    store.apply_changelog_batch(
        [event(0, 0, b"a", b"1"), event(0, 1, b"b", b"1")], to_key=None, to_value=None
    )
    assert store.persisted_offset(TP(TOPIC, 0)) == 1
    assign(store, 0)
    store.apply_changelog_batch([event(0, 5, b"c", b"1")], to_key=None, to_value=None)
    assert store.persisted_offset(TP(TOPIC, 0)) == 1  # offsets 2-4 were skipped


def test_exactly_once_a_commit_marker_is_no_gap(tmp_path: Path) -> None:
    """A transaction's marker takes the offset after its last record: the next stream
    begins one further on, and that is whole."""

    async def claim(partitions: Any) -> None:
        pass

    store = new_store(tmp_path, FakeProbe(), [], {TP(TOPIC, 0)}, claim)
    assign(store, 0)
    store.apply_changelog_batch([event(0, 0, b"a", b"1")], to_key=None, to_value=None)
    assign(store, 0)
    store.apply_changelog_batch([event(0, 2, b"b", b"1")], to_key=None, to_value=None)
    assert store.persisted_offset(TP(TOPIC, 0)) == 2
