"""A table partition's file: a prefix of its changelog, whole or refused, never half-read."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state.log_file import (
    MAGIC,
    LogMeta,
    PartitionLog,
    Position,
    Unreadable,
    fingerprint,
    read_log,
)
from streams.state.trust import Changelog, WipeReason, judge

META = LogMeta("app", "customers", "app-customers-changelog", 3)


def new_log(tmp_path: Path) -> PartitionLog:
    return PartitionLog.create(tmp_path / "p3.log", META)


def test_entries_and_the_offset_they_reflect_come_back(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.append([("a", b"1"), ("b", b"2")], Position(4, 11))
    log.append([("a", b"3"), ("ü-non-ascii", b"4"), ("b", None)], Position(9, 12))
    log.close()
    contents = read_log(log.path)
    assert contents.meta == META
    assert contents.entries == {"a": b"3", "ü-non-ascii": b"4"}
    assert contents.position == Position(9, 12)
    assert contents.valid_bytes == contents.file_bytes


def test_an_empty_file_reflects_no_offset(tmp_path: Path) -> None:
    contents = read_log(new_log(tmp_path).path)
    assert contents.entries == {}
    assert contents.position is None


@pytest.mark.parametrize("cut", [1, 7, 20, 60])
def test_a_write_cut_short_is_dropped_and_the_rest_kept(tmp_path: Path, cut: int) -> None:
    log = new_log(tmp_path)
    log.append([("a", b"1")], Position(0, 1))
    whole = log.size
    log.append([("a", b"2"), ("b", b"x" * 100)], Position(1, 2))
    log.close()
    with log.path.open("r+b") as handle:
        handle.truncate(whole + cut)
    contents = read_log(log.path)
    assert contents.entries == {"a": b"1"}
    assert contents.position == Position(0, 1)
    assert contents.valid_bytes == whole
    reopened = PartitionLog.open(log.path, contents)  # cuts the torn tail off
    reopened.append([("c", b"3")], Position(2, 3))
    reopened.close()
    assert read_log(log.path).entries == {"a": b"1", "c": b"3"}


def test_zeros_after_the_last_frame_are_a_lost_tail_not_corruption(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.append([("a", b"1")], Position(0, 1))
    log.close()
    with log.path.open("ab") as handle:
        handle.write(b"\0" * 4096)
    assert read_log(log.path).position == Position(0, 1)


def test_a_damaged_frame_in_the_middle_makes_the_file_unreadable(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.append([("a", b"1" * 50)], Position(0, 1))
    first_end = log.size
    log.append([("b", b"2")], Position(1, 2))
    log.close()
    data = bytearray(log.path.read_bytes())
    data[first_end - 10] ^= 0xFF
    log.path.write_bytes(bytes(data))
    with pytest.raises(Unreadable, match="checksum"):
        read_log(log.path)


def test_a_file_of_something_else_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "p3.log"
    path.write_bytes(b"SQLite format 3\0" + b"\0" * 100)
    with pytest.raises(Unreadable, match="magic"):
        read_log(path)
    path.write_bytes(MAGIC + b"\x05\0\0\0\0\0\0\0abcde")
    with pytest.raises(Unreadable):
        read_log(path)


def test_the_header_says_whose_file_it_is() -> None:
    assert META.mismatch(META) is None
    other_app = LogMeta("other", "customers", "app-customers-changelog", 3)
    assert "app id 'other'" in str(META.mismatch(other_app))
    newer = LogMeta("app", "customers", "app-customers-changelog", 3, format=99)
    assert "format 99" in str(META.mismatch(newer))
    moved = LogMeta("app", "customers", "app-customers-changelog", 4)
    assert "[4]" in str(META.mismatch(moved))


def test_compaction_keeps_the_contents_and_what_came_meanwhile(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    for n in range(200):
        log.append([(f"k{n % 10}", str(n).encode() * 20)], Position(n, n))
    before = read_log(log.path)
    upto = log.compaction_point()
    temporary = log.write_snapshot(upto)
    log.append([("late", b"meanwhile")], Position(200, 7))  # while the snapshot is written
    log.finish_compaction(temporary, upto)
    log.append([("after", b"x")], Position(201, 8))
    log.close()
    after = read_log(log.path)
    assert after.entries == {**before.entries, "late": b"meanwhile", "after": b"x"}
    assert after.position == Position(201, 8)
    assert log.size < 10 * 20 * 5 + 2_000  # ten live keys, not two hundred frames
    assert not temporary.exists()


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.text(min_size=1, max_size=12), st.one_of(st.none(), st.binary(max_size=40))
            ),
            max_size=8,
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(min_value=0, max_value=400),
)
def test_any_cut_reads_back_as_the_frames_before_it(
    tmp_path_factory: pytest.TempPathFactory,
    frames: list[list[tuple[str, bytes | None]]],
    cut: int,
) -> None:
    log = PartitionLog.create(tmp_path_factory.mktemp("cut") / "p3.log", META)
    sizes, states, state = [log.size], [{}], {}
    for n, entries in enumerate(frames):
        log.append(entries, Position(n, n))
        for key, value in entries:
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        sizes.append(log.size)
        states.append(dict(state))
    log.close()
    end = max(sizes[0], sizes[-1] - cut)
    with log.path.open("r+b") as handle:
        handle.truncate(end)
    contents = read_log(log.path)
    whole = max(i for i, size in enumerate(sizes) if size <= end)
    assert contents.entries == states[whole]
    assert contents.position == (None if whole == 0 else Position(whole - 1, whole - 1))


def test_an_empty_value_is_a_value_and_none_a_deletion(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.append([("a", b"x"), ("b", b"y")], Position(0, 0))
    log.append([("a", b""), ("b", None)], Position(1, 0))
    log.close()
    assert read_log(log.path).entries == {"a": b""}


def test_a_file_behind_the_changelog_is_kept_and_replays_the_rest() -> None:
    verdict = judge(Position(9, 7), Changelog(0, 12, (9, 7)))
    assert verdict.keep and verdict.behind == 2
    assert judge(Position(11, 7), Changelog(0, 12, (11, 7))).behind == 0
    assert judge(None, Changelog(0, 12)).keep


def test_a_file_ahead_of_or_foreign_to_the_changelog_is_wiped() -> None:
    assert judge(Position(12, 7), Changelog(0, 12)).reason is WipeReason.AHEAD
    assert judge(Position(3, 7), Changelog(0, 0)).reason is WipeReason.AHEAD
    assert judge(Position(9, 7), Changelog(0, 12, (9, 8))).reason is WipeReason.FOREIGN


def test_a_compacted_away_record_cannot_be_compared_and_the_file_is_kept() -> None:
    verdict = judge(Position(9, 7), Changelog(0, 12, (10, 99)))
    assert verdict.keep and verdict.behind == 2


def test_a_changelog_whose_start_moved_past_the_file_replays_from_its_start() -> None:
    verdict = judge(Position(3, 7), Changelog(8, 12))
    assert verdict.keep and verdict.behind == 4


def test_fingerprints_tell_records_apart() -> None:
    assert fingerprint(b"k", b"v") == fingerprint(b"k", b"v")
    assert fingerprint(b"k", b"v") != fingerprint(b"k", b"w")
    assert fingerprint(None, None) == fingerprint(b"", b"")
