"""Input positions: every offset the log holds is processed exactly once, in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state.positions import Positions, Verdict


def test_a_restored_partition_skips_what_was_persisted_and_crosses_a_hole() -> None:
    positions = Positions()
    positions.restore(3, 100)
    assert positions.admit(3, 99) is Verdict.SEEN
    assert positions.admit(3, 100) is Verdict.PROCESS
    assert positions.admit(3, 105) is Verdict.GAP
    assert positions.next_offset[3] == 106
    assert positions.admit(3, 104) is Verdict.SEEN


def test_an_unknown_partition_starts_wherever_the_reader_starts() -> None:
    positions = Positions()
    assert positions.admit(0, 42) is Verdict.PROCESS
    assert positions.next_offset[0] == 43


def test_a_forgotten_partition_starts_afresh() -> None:
    positions = Positions()
    positions.restore(1, 7)
    positions.forget(1)
    assert positions.next_offset == {}
    assert positions.admit(1, 3) is Verdict.PROCESS


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 60),
    holes=st.sets(st.integers(0, 59)),
    rewinds=st.lists(st.integers(0, 59), max_size=10),
)
def test_holes_and_redelivery_never_lose_or_repeat_an_offset(
    n: int, holes: set[int], rewinds: list[int]
) -> None:
    """A log with offsets that hold no record (markers, compaction), read by a
    reader that is sent back now and then (a restart from an older position)
    yields every record once and in order."""
    log = [o for o in range(n) if o not in holes]
    positions = Positions()
    processed: list[int] = []
    starts = iter([0, *rewinds])
    for start in starts:
        for offset in (o for o in log if o >= start):
            if positions.admit(0, offset) is not Verdict.SEEN:
                processed.append(offset)
    assert processed == log
