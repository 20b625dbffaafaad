"""Garbage collection between steps: CPython's generational schedule, at step boundaries."""

from __future__ import annotations

import gc

from streams.step_collector import StepCollector


def test_collections_follow_the_generational_schedule_and_only_when_due() -> None:
    collector = StepCollector(young=50, middle=3, old=2)
    collector.start()
    try:
        assert not gc.isenabled()
        gc.collect()
        assert collector.after_step() is None  # nothing allocated since
        generations = []
        for _ in range(6):
            kept = [[] for _ in range(200)]  # containers: tracked allocations
            generations.append(collector.after_step())
            del kept
        assert generations == [0, 0, 1, 0, 0, 2]
    finally:
        collector.stop()
        gc.unfreeze()
    assert gc.isenabled()
