"""Intake of one fetched batch: ownership and position verdicts, decoding, dead letters.

Pure (no Faust, no Kafka client): the batch reader hands over records with
the attributes of a Kafka consumer record, and what comes out is what the
core needs (events in arrival order per partition), what must go to the
dead-letter topic, and the positions the batch moves to once delivered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from schemas.dead_letter import DeadLetter
from schemas.events import CustomerEvent
from streams.decoding import Rejected, dead_letter, decode_event
from streams.state.positions import Positions, Verdict


class InputRecord(Protocol):
    """What intake reads of a consumer record (aiokafka's `ConsumerRecord` has these)."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int: ...


@dataclass(frozen=True)
class Letter:
    """A dead letter and where it goes: the partition of the message it replaces."""

    partition: int
    key: bytes | None
    letter: DeadLetter


@dataclass
class Intake:
    """One batch, sorted out."""

    events: list[tuple[int, CustomerEvent]] = field(default_factory=list)
    letters: list[Letter] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)
    """Partition -> next offset to read, for partitions this batch advanced."""
    verdicts: Counter[str] = field(default_factory=Counter)
    """Messages not processed (``seen``, ``not_owned``) and gaps crossed (``gap``)."""
    types: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    timestamps_ms: list[int] = field(default_factory=list)
    """Kafka timestamps of the admitted messages, for ingest latency."""

    @property
    def admitted(self) -> int:
        """Messages whose effects this batch carries (events and dead letters)."""
        return len(self.events) + len(self.letters)


def take(
    records: Iterable[InputRecord],
    topic: str,
    owned: Container[int],
    positions: Positions,
    received_at: datetime,
) -> Intake:
    """Sort a fetched batch out; `positions` moves on for every admitted message.

    Messages of partitions not in `owned` are left alone (a partition can be
    revoked between a fetch and its processing), and so are offsets already
    processed. Everything admitted becomes exactly one event or dead letter.
    """
    intake = Intake()
    for record in records:
        partition = record.partition
        if partition not in owned:
            intake.verdicts["not_owned"] += 1
            continue
        verdict = positions.admit(partition, record.offset)
        if verdict is Verdict.SEEN:
            intake.verdicts["seen"] += 1
            continue
        if verdict is Verdict.GAP:
            intake.verdicts["gap"] += 1
        intake.positions[partition] = record.offset + 1
        intake.timestamps_ms.append(record.timestamp)
        outcome = decode_event(record.key, record.value)
        if isinstance(outcome, Rejected):
            letter = dead_letter(
                outcome, record.key, record.value, topic, partition, record.offset, received_at
            )
            intake.letters.append(Letter(partition, record.key, letter))
            intake.rejected[outcome.error_type] += 1
        else:
            intake.events.append((partition, outcome))
            intake.types[outcome.type] += 1  # a StrEnum: equal to, and hashed as, its value
    return intake
