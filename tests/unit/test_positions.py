"""Input positions: every offset is processed exactly once, whatever is dropped or redelivered."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.positions import Positions, Verdict


def test_a_restored_partition_skips_what_was_persisted_and_flags_a_jump() -> None:
    positions = Positions()
    positions.restore(3, 100)
    assert positions.admit(3, 99) is Verdict.SEEN
    assert positions.admit(3, 100) is Verdict.PROCESS
    assert positions.admit(3, 105) is Verdict.GAP
    assert positions.next_offset[3] == 101


def test_an_unknown_partition_starts_wherever_the_consumer_starts() -> None:
    positions = Positions()
    assert positions.admit(0, 42) is Verdict.PROCESS
    assert positions.next_offset[0] == 43


def test_a_resync_discards_stale_messages_until_the_target_arrives() -> None:
    positions = Positions()
    positions.restore(0, 10)
    positions.resync(0, 10, now=5.0)
    assert [positions.admit(0, o) for o in (12, 13)] == [Verdict.DISCARD] * 2
    assert positions.stalled(now=10.0, after=10.0) == {}
    assert positions.stalled(now=16.0, after=10.0) == {0: 10}
    assert positions.admit(0, 10) is Verdict.PROCESS
    assert positions.resyncing == {}


def test_forgetting_a_partition_drops_its_resync() -> None:
    positions = Positions()
    positions.resync(1, 7, now=0.0)
    positions.forget(1)
    assert positions.admit(1, 9) is Verdict.PROCESS


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 60),
    script=st.lists(st.tuples(st.sampled_from(["deliver", "drop", "rewind"]), st.integers(0, 59))),
)
def test_drops_and_rewinds_never_lose_or_repeat_an_offset(
    n: int, script: list[tuple[str, int]]
) -> None:
    """A consumer that drops messages (as Faust does mid-rebalance) and rewinds
    (redelivery after a rebalance), driven by the worker's rules, still yields
    every offset once and in order."""
    positions = Positions()
    positions.restore(0, 0)  # nothing persisted: the worker starts at the log start
    processed: list[int] = []
    fetch = 0  # the consumer's next fetch offset
    steps = iter(script)
    for _ in range(20 * n + 100):
        if fetch >= n and len(processed) == n:
            break
        action, arg = next(steps, ("deliver", 0))
        if action == "rewind":
            fetch = min(arg, fetch)
            continue
        if fetch >= n:
            fetch = positions.next_offset.get(0, 0)  # the stall check re-reads
            continue
        offset, fetch = fetch, fetch + 1
        if action == "drop":
            continue
        verdict = positions.admit(0, offset)
        if verdict is Verdict.PROCESS:
            processed.append(offset)
        elif verdict is Verdict.GAP:
            fetch = positions.next_offset[0]  # every offset exists: seek back there
            positions.resync(0, fetch, now=0.0)
    assert processed == list(range(n))
