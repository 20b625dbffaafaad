"""Input positions: what was processed, what is persisted, what the group was told.

The worker reads its event partitions itself (`streams.batch_reader`) from
the position it persisted with each partition's state: the next offset whose
effects are all in the changelog. Every message is checked against the
position it expects next:

- an offset below it was processed before (a re-delivery): skip it;
- the offset itself: process it, and expect the next one;
- an offset above it: Kafka holds no records in between (transaction
  markers, compaction, retention) since the reader returns every record from
  where it was positioned; process it and count the gap.

A position then goes through four stages on its way to the consumer group:
*held* (reached by a step whose records are not acknowledged yet), *sent*
and *sealed* (its position record is on its way, and then covered by a
flush in progress), *durable* (Kafka acknowledged it) and
*committed* (to the group, for lag tooling only: never read back). Plain
logic, no Kafka client.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    """Next expected offset per owned partition, and each position's stage.

    >>> positions = Positions()
    >>> positions.restore(0, 10)
    >>> [positions.admit(0, o).value for o in (9, 10, 11, 13, 12)]
    ['seen', 'process', 'process', 'gap', 'seen']
    >>> positions.next_offset
    {0: 14}
    """

    next_offset: dict[int, int] = field(default_factory=dict)
    held: dict[int, int] = field(default_factory=dict)
    sent: dict[int, int] = field(default_factory=dict)
    sealed: dict[int, int] = field(default_factory=dict)
    durable: dict[int, int] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)

    def restore(self, partition: int, next_offset: int | None) -> None:
        """Start tracking a newly owned partition from its persisted position."""
        if next_offset is None:
            self.next_offset.pop(partition, None)
        else:
            self.next_offset[partition] = next_offset

    def forget(self, partition: int) -> None:
        """Stop tracking a partition this worker no longer owns."""
        for stage in (
            self.next_offset,
            self.held,
            self.sent,
            self.sealed,
            self.durable,
            self.committed,
        ):
            stage.pop(partition, None)

    def admit(self, partition: int, offset: int) -> Verdict:
        """Classify one message; a processed one moves the position on."""
        expected = self.next_offset.get(partition)
        if expected is not None and offset < expected:
            return Verdict.SEEN
        self.next_offset[partition] = offset + 1
        if expected is not None and offset > expected:
            return Verdict.GAP
        return Verdict.PROCESS

    def hold(self, reached: Mapping[int, int]) -> None:
        """Positions a step reached; written once its records are acknowledged."""
        self.held.update(reached)

    def release(self) -> dict[int, int]:
        """The held positions, now to be written (their records were acknowledged)."""
        released, self.held = self.held, {}
        self.sent.update(released)
        return released

    def seal(self) -> None:
        """A flush starts: the position records sent so far are what it acknowledges."""
        self.sealed.update(self.sent)
        self.sent.clear()

    def acknowledged(self) -> None:
        """The flush succeeded: the sealed position records are durable."""
        self.durable.update(self.sealed)
        self.sealed.clear()

    def to_commit(self, owned: set[int]) -> dict[int, int]:
        """Durable positions of owned partitions the group has not been told yet."""
        return {p: o for p, o in self.durable.items() if p in owned and self.committed.get(p) != o}
