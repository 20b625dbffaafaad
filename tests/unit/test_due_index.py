"""The due-time index returns what is due, in order, bounded, without stale entries."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from scoring.due_index import DueIndex


def test_reschedule_replaces_the_old_due_time() -> None:
    index = DueIndex()
    index.schedule("a", 5)
    index.schedule("a", 50)
    assert index.pop_due(10, 10) == []
    assert index.due_time("a") == 50
    assert index.pop_due(50, 10) == ["a"]
    assert "a" not in index


def test_limit_bounds_each_pop_and_order_is_by_due_time() -> None:
    index = DueIndex()
    for i in range(10):
        index.schedule(f"c{i}", 100 - i)
    assert index.pop_due(1000, 3) == ["c9", "c8", "c7"]
    assert len(index) == 7
    assert index.next_due() == 94


def test_reschedule_all_and_remove() -> None:
    index = DueIndex()
    for i in range(5):
        index.schedule(f"c{i}", 1000 + i)
    index.remove("c0")
    index.reschedule_all(0)
    assert sorted(index.pop_due(0, 100)) == ["c1", "c2", "c3", "c4"]


@given(
    st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 100)), max_size=200),
    st.integers(0, 100),
)
def test_matches_a_plain_dict(ops: list[tuple[str, int]], now: int) -> None:
    index = DueIndex()
    model: dict[str, int] = {}
    for key, due in ops:
        index.schedule(key, due)
        model[key] = due
    expected = sorted((d, k) for k, d in model.items() if d <= now)
    assert index.pop_due(now, 1000) == [k for _, k in expected]
    assert len(index) == sum(1 for d in model.values() if d > now)
    assert len(index._heap) <= 2 * len(model) + 1024 + 1


HOUR = 3_600_000_000


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 100 * HOUR)), max_size=200),
    st.lists(st.integers(0, 30), max_size=20),
    st.integers(0, 110 * HOUR),
)
def test_counting_keys_due_before_a_time_is_right_to_within_an_hour(
    schedules: list[tuple[int, int]], removed: list[int], when: int
) -> None:
    index = DueIndex()
    for key, due in schedules:
        index.schedule(f"k{key}", due)
    for key in removed:
        index.remove(f"k{key}")
    index.pop_due(when // 3, 5)

    def exactly(at: int) -> int:
        keys = list(index.keys())  # DueIndex has no __iter__
        return sum(1 for key in keys if (index.due_time(key) or 0) < at)

    assert exactly(when - HOUR) <= index.count_before(when) <= exactly(when)
    aligned = (when // HOUR) * HOUR
    assert index.count_before(aligned) == exactly(aligned)
    index.reschedule_all(7)
    assert index.count_before(HOUR) == len(index)


@given(
    st.dictionaries(st.sampled_from("abcdefghij"), st.integers(0, 100), max_size=10),
    st.lists(st.tuples(st.sampled_from("abcdefghijkl"), st.integers(0, 100)), max_size=60),
    st.lists(st.tuples(st.integers(0, 100), st.integers(1, 5)), min_size=1, max_size=10),
)
def test_a_restored_run_and_later_schedules_pop_like_one_dict(
    restored: dict[str, int], ops: list[tuple[str, int]], pops: list[tuple[int, int]]
) -> None:
    index = DueIndex()
    index.schedule_many(list(restored), np.array(list(restored.values()), dtype=np.int64))
    model = dict(restored)
    for key, due in ops:
        index.schedule(key, due)
        model[key] = due
    for now, limit in sorted(pops):
        live = sorted((d, k) for k, d in model.items() if d <= now)
        got = index.pop_due(now, limit)
        assert [model[k] for k in got] == [d for d, _ in live[:limit]]
        for key in got:
            del model[key]
        assert index.next_due() == min(model.values(), default=None)
        assert len(index) == len(model)
