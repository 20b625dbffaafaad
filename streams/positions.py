"""Input positions the worker owns: what was processed, whatever the group committed.

The worker reads its event partitions itself (`streams.batch_reader`) from
the position it persisted with each partition's state: the next offset whose
effects are all in the changelog. It commits that position to the consumer
group only for lag tooling. Every message is checked against it:

- an offset below it was processed before (a re-delivery): skip it;
- the offset itself: process it, and expect the next one;
- an offset above it: Kafka holds no records in between (transaction
  markers, compaction, retention) since the reader returns every record from
  where it was positioned; process it and count the gap.

Plain logic, no Kafka client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    """What to do with one input message."""

    PROCESS = "process"
    SEEN = "seen"
    GAP = "gap"
    """Process it: the offsets before it hold no records."""


@dataclass
class Positions:
    """Next expected offset per owned partition.

    >>> positions = Positions()
    >>> positions.restore(0, 10)
    >>> [positions.admit(0, o).value for o in (9, 10, 11, 13, 12)]
    ['seen', 'process', 'process', 'gap', 'seen']
    >>> positions.next_offset
    {0: 14}
    """

    next_offset: dict[int, int] = field(default_factory=dict)

    def restore(self, partition: int, next_offset: int | None) -> None:
        """Start tracking a newly owned partition from its persisted position."""
        if next_offset is None:
            self.next_offset.pop(partition, None)
        else:
            self.next_offset[partition] = next_offset

    def forget(self, partition: int) -> None:
        """Stop tracking a partition this worker no longer owns."""
        self.next_offset.pop(partition, None)

    def admit(self, partition: int, offset: int) -> Verdict:
        """Classify one message; a processed one moves the position on."""
        expected = self.next_offset.get(partition)
        if expected is not None and offset < expected:
            return Verdict.SEEN
        self.next_offset[partition] = offset + 1
        if expected is not None and offset > expected:
            return Verdict.GAP
        return Verdict.PROCESS
