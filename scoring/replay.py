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
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from schemas.events import CustomerEvent
from schemas.model import SegmentModel
from schemas.segments import RiskBandChange, SegmentAssignment, SegmentChange
from scoring.customer_record import CustomerRecord
from scoring.reassignment import RescoreConfig, Rescorer, RescoreResult

REPLAY_PARTITION = 0
DEFAULT_BATCH = 500


@dataclass
class ReplayResult:
    """The change stream, the band crossings, the final assignments and event counts."""

    changes: list[SegmentChange] = field(default_factory=list)
    band_changes: list[RiskBandChange] = field(default_factory=list)
    assignments: list[SegmentAssignment] = field(default_factory=list)
    records: dict[str, CustomerRecord] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


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
    rescorer = Rescorer(model, config)
    records: dict[str, CustomerRecord] = {}

    def lookup(key: str, _partition: int) -> CustomerRecord | None:
        return records.get(key)

    changes: list[SegmentChange] = []
    band_changes: list[RiskBandChange] = []
    counts: Counter[str] = Counter()

    def take(result: RescoreResult) -> None:
        records.update(result.records)
        changes.extend(result.changes)
        band_changes.extend(result.band_changes)
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
    assignments = rescorer.current_assignments(
        REPLAY_PARTITION, [(key, records[key]) for key in sorted(records)]
    )
    return ReplayResult(changes, band_changes, assignments, records, dict(counts))
