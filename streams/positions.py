"""Input positions the worker owns, so no event is skipped whatever Faust commits.

Faust acknowledges messages it drops while a rebalance settles (a message
fetched under an older consumer generation, or while flow is suspended) and
may then commit past them: the events would never be processed. The worker
therefore keeps, per partition, the next input offset whose effects are all
persisted (stored in the changelog after the batch's records), and checks
every message against it:

- an offset below it was fully processed before: skip it;
- the offset itself: process it, and expect the next one;
- an offset above it is a gap: either Kafka has no records there (compaction,
  transaction markers, retention) or messages were dropped. The caller finds
  the first offset that exists at or after the expected one, seeks there, and
  messages are discarded until that offset arrives.

Plain logic, no Kafka client: the worker does the seeking and the probing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    """What to do with one input message."""

    PROCESS = "process"
    SEEN = "seen"
    GAP = "gap"
    DISCARD = "discard"


@dataclass
class Positions:
    """Next expected offset per owned partition, and partitions being re-read.

    >>> positions = Positions()
    >>> positions.restore(0, 10)
    >>> [positions.admit(0, o).value for o in (9, 10, 11, 13)]
    ['seen', 'process', 'process', 'gap']
    >>> positions.resync(0, 12, now=0.0)
    >>> [positions.admit(0, o).value for o in (14, 12, 13)]
    ['discard', 'process', 'process']
    """

    next_offset: dict[int, int] = field(default_factory=dict)
    resyncing: dict[int, tuple[int, float]] = field(default_factory=dict)

    def restore(self, partition: int, next_offset: int | None) -> None:
        """Start tracking a newly owned partition from its persisted position."""
        self.resyncing.pop(partition, None)
        if next_offset is None:
            self.next_offset.pop(partition, None)
        else:
            self.next_offset[partition] = next_offset

    def forget(self, partition: int) -> None:
        """Stop tracking a partition this worker no longer owns."""
        self.next_offset.pop(partition, None)
        self.resyncing.pop(partition, None)

    def admit(self, partition: int, offset: int) -> Verdict:
        """Classify one message; a processed one moves the position on."""
        pending = self.resyncing.get(partition)
        if pending is not None:
            if offset != pending[0]:
                return Verdict.DISCARD
            del self.resyncing[partition]
        expected = self.next_offset.get(partition)
        if expected is not None and offset < expected:
            return Verdict.SEEN
        if expected is not None and offset > expected:
            return Verdict.GAP
        self.next_offset[partition] = offset + 1
        return Verdict.PROCESS

    def resync(self, partition: int, offset: int, now: float) -> None:
        """Re-read `partition` from `offset` (the caller has seeked there)."""
        self.next_offset[partition] = offset
        self.resyncing[partition] = (offset, now)

    def stalled(self, now: float, after: float) -> dict[int, int]:
        """Partitions whose re-read has not started `after` seconds after its seek."""
        return {p: offset for p, (offset, since) in self.resyncing.items() if now - since > after}
