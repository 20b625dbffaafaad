"""Cyclic garbage collection between pipeline steps, never in the middle of one.

CPython's collector runs whenever allocations pass a threshold, which in a
batch worker means in the middle of a batch, when everything the batch holds
is alive and must be traversed: pauses of tens of milliseconds land on the
event path at random. Reference counting frees almost all of a step's
objects when the step ends, so collecting right after it is cheap. While the
pipeline runs, automatic collection is off and this collector applies the
same generational schedule at step boundaries; what was alive when it started
(modules, the app and its services) is frozen out of every collection.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass


@dataclass
class StepCollector:
    """A generational schedule applied after each step.

    A young collection runs once `young` net allocations piled up, every
    `middle`-th one also collects the middle generation, and every
    `middle * old`-th one the old generation too (CPython's own policy,
    with a larger first threshold).
    """

    young: int = 10_000
    middle: int = 10
    old: int = 10
    collections: int = 0

    def start(self) -> None:
        """Take over from the automatic collector."""
        gc.freeze()
        gc.disable()

    def stop(self) -> None:
        """Hand back to the automatic collector."""
        gc.enable()

    def after_step(self) -> int | None:
        """Collect if due; the generation collected, or None."""
        if gc.get_count()[0] < self.young:
            return None
        self.collections += 1
        generation = 0
        if self.collections % self.middle == 0:
            generation = 1
        if self.collections % (self.middle * self.old) == 0:
            generation = 2
        gc.collect(generation)
        return generation
