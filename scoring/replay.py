"""Offline replay: the worker's core over an event sequence, without Kafka.

Events are taken in the order given (callers sort by event time), in batches
as the worker takes them from a partition; after each batch the sweep runs
with no limit, so recency-driven moves happen at batch boundaries. At the end
every assigned customer is evaluated as of the latest event time.
Everything, including ``emitted_at``, is a function of the input, so two
replays of the same input give identical output.
"""

from __future__ import annotations

import sys
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Protocol

from schemas.events import CustomerEvent
from schemas.model import SegmentModel
from schemas.segments import RiskBandChange, SegmentAssignment, SegmentChange
from scoring.customer_record import CustomerRecord
from scoring.reassignment import RescoreConfig, Rescorer, RescoreResult

REPLAY_PARTITION = 0
DEFAULT_BATCH = 500
FINAL_BATCH = 10_000
"""Customers per batch of final assignments."""
CACHED_RECORDS = 50_000
"""Customer records kept as objects (the most recently used); the rest as bytes."""


@dataclass
class ReplayResult:
    """The change stream, the band crossings, the final assignments and event counts."""

    changes: list[SegmentChange] = field(default_factory=list)
    band_changes: list[RiskBandChange] = field(default_factory=list)
    assignments: list[SegmentAssignment] = field(default_factory=list)
    records: dict[str, CustomerRecord] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


class ReplaySink(Protocol):
    """Where a replay's outputs go as they are produced (files, a list)."""

    def changes(self, changes: Sequence[SegmentChange]) -> None: ...
    def band_changes(self, crossings: Sequence[RiskBandChange]) -> None: ...
    def assignments(self, assignments: Sequence[SegmentAssignment]) -> None: ...


@dataclass(frozen=True)
class ReplaySummary:
    """What a streamed replay counted (its outputs went to the sink)."""

    customers: int
    counts: dict[str, int]


class _Collect:
    """A sink that keeps everything (`replay`)."""

    def __init__(self, result: ReplayResult) -> None:
        self.result = result

    def changes(self, changes: Sequence[SegmentChange]) -> None:
        self.result.changes.extend(changes)

    def band_changes(self, crossings: Sequence[RiskBandChange]) -> None:
        self.result.band_changes.extend(crossings)

    def assignments(self, assignments: Sequence[SegmentAssignment]) -> None:
        self.result.assignments.extend(assignments)


def _batches(events: Iterable[CustomerEvent], size: int) -> Iterator[list[CustomerEvent]]:
    iterator = iter(events)
    while batch := list(islice(iterator, size)):
        yield batch


def replay(
    events: Iterable[CustomerEvent],
    model: SegmentModel,
    config: RescoreConfig | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> ReplayResult:
    """Run the core over `events` (in event-time order) and collect its outputs."""
    result = ReplayResult()
    records: dict[str, bytes] = {}
    summary = replay_into(events, model, _Collect(result), config, batch_size, records)
    result.records = {key: CustomerRecord.loads(data) for key, data in records.items()}
    result.counts = summary.counts
    return result


def replay_into(
    events: Iterable[CustomerEvent],
    model: SegmentModel,
    sink: ReplaySink,
    config: RescoreConfig | None = None,
    batch_size: int = DEFAULT_BATCH,
    records: dict[str, bytes] | None = None,
) -> ReplaySummary:
    """Run the core over `events` (in event-time order), handing outputs to `sink` as
    they come; the final assignments go out in batches of `batch_size` too.

    Customer records are kept as the bytes the worker's store keeps (about 180
    per customer), in `records` when given, so memory grows with the customers,
    not with the events or the outputs.
    """
    rescorer = Rescorer(model, config)
    held: dict[str, bytes] = {} if records is None else records
    # The core updates the records it evaluates in place, and writes only those
    # that changed materially (a worker's sweep that only moved the clock need
    # not); a replay keeps every update, as if each record were one object all
    # along. The most recently used `CACHED_RECORDS` stay objects; the others are
    # kept as the bytes the worker's store keeps (about 180 per customer), written
    # back between calls to the core, never while it may hold them.
    cache: OrderedDict[str, CustomerRecord] = OrderedDict()

    def lookup(key: str, _partition: int) -> CustomerRecord | None:
        record = cache.get(key)
        if record is None:
            data = held.get(key)
            if data is None:
                return None
            record = cache[key] = CustomerRecord.loads(data)
        else:
            cache.move_to_end(key)
        return record

    counts: Counter[str] = Counter()

    def take(result: RescoreResult) -> None:
        for key, record in result.records.items():
            cache[key] = record
            cache.move_to_end(key)
        while len(cache) > CACHED_RECORDS:
            key, record = cache.popitem(last=False)
            held[key] = record.dumps()
        if result.changes:
            sink.changes(result.changes)
        if result.band_changes:
            sink.band_changes(result.band_changes)
        counts.update({outcome.value: n for outcome, n in result.counts.items()})

    for batch in _batches(events, batch_size):
        shard = rescorer.shard(REPLAY_PARTITION)
        latest = max(e.occurred_at for e in batch)
        now = latest if shard.watermark is None or latest > shard.watermark else shard.watermark
        take(rescorer.process([(REPLAY_PARTITION, e) for e in batch], lookup, now))
        take(rescorer.sweep(REPLAY_PARTITION, lookup, now, sys.maxsize))
    last = rescorer.shards.get(REPLAY_PARTITION)
    if last is not None and last.watermark is not None:
        last.due.reschedule_all(0)
        take(rescorer.sweep(REPLAY_PARTITION, lookup, last.watermark, sys.maxsize))
    for key, record in cache.items():
        held[key] = record.dumps()
    cache.clear()
    keys = sorted(held)
    size = max(batch_size, FINAL_BATCH)
    for start in range(0, len(keys), size):
        chunk = keys[start : start + size]
        items = [(key, CustomerRecord.loads(held[key])) for key in chunk]
        sink.assignments(rescorer.current_assignments(REPLAY_PARTITION, items))
    return ReplaySummary(len(held), dict(counts))
