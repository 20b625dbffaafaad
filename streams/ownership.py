"""Which event partitions this worker owns, and bringing a partition up from its state.

Faust's consumer group decides; this module follows. Faust revokes every
partition at the start of a rebalance and assigns the new set once the group
agrees; table recovery then restores the changelogs. So:

- on revoke, reading stops (the caller holds the lock, so a batch in flight
  is finished first, before the rebalance can hand its partitions over);
- on assign, the new set is remembered; a partition missing from any
  assignment since the last sync has been someone else's in between, and its
  in-memory state is stale;
- once recovery is complete, `sync` drops the partitions gone, restores the
  new ones (clock, due index, centroids, drift population, input position)
  from the recovered tables, and points the batch reader at exactly the
  owned partitions, each at its persisted position.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from scoring.customer_record import CustomerRecord, to_micros
from scoring.drift_monitor import DriftMonitor
from scoring.reassignment import Rescorer
from streams.batch_reader import BatchReader
from streams.delivery import Delivery, position_key
from streams.metrics import WorkerMetrics
from streams.positions import Positions
from streams.table_access import PartitionedTable

log = logging.getLogger(__name__)


@dataclass
class Tables:
    """The worker's three changelog-backed tables.

    Customer records are kept as the bytes of their changelog value and
    decoded when read: a million customers as bytes are a fraction of their
    size as objects, and bytes cost the garbage collector nothing.
    """

    records: PartitionedTable
    checkpoints: PartitionedTable
    positions: PartitionedTable

    def record(self, key: str, partition: int) -> CustomerRecord | None:
        """A customer's record, decoded from the bytes the store keeps."""
        data = self.records.get(key, partition)
        return None if data is None else CustomerRecord.loads(data)

    def records_of(self, partitions: Iterable[int]) -> dict[int, list[tuple[str, CustomerRecord]]]:
        """Every customer record of `partitions`, grouped by partition (one scan)."""
        wanted = set(partitions)
        grouped: dict[int, list[tuple[str, CustomerRecord]]] = {p: [] for p in wanted}
        for key, data in self.records.items():
            record = CustomerRecord.loads(data)
            if record.partition in wanted:
                grouped[record.partition].append((str(key), record))
        return grouped

    def position(self, partition: int) -> int | None:
        """The persisted next input offset of a partition, or None (never processed)."""
        stored = self.positions.get(position_key(partition), partition)
        if stored is None:
            # Before positions had a table of their own they lived in the
            # centroids table as "o{n}"; read them there once after an upgrade.
            stored = self.checkpoints.get(f"o{partition}", partition)
        offset = stored.get("next_offset") if isinstance(stored, dict) else None
        return offset if isinstance(offset, int) else None


def evaluations(items: Iterable[tuple[str, CustomerRecord]]) -> list[tuple[int, tuple[float, ...]]]:
    """The (as_of micros, vector) of every evaluated record: its drift contribution."""
    return [
        (to_micros(r.as_of), r.vector)
        for _, r in items
        if r.vector is not None and r.as_of is not None
    ]


@dataclass
class Ownership:
    """The owned event partitions, and the assignment Faust most recently made."""

    owned: set[int] = field(default_factory=set)
    positions: Positions = field(default_factory=Positions)
    pending: set[int] | None = None
    reading: bool = False
    _lost: set[int] = field(default_factory=set)

    def on_revoked(self) -> None:
        """A rebalance started: stop reading until the next sync."""
        self.reading = False

    def on_assigned(self, partitions: Iterable[int]) -> None:
        """The group's new assignment of event partitions to this worker."""
        assigned = set(partitions)
        self._lost |= self.owned - assigned
        self.pending = assigned

    async def sync(
        self,
        rescorer: Rescorer,
        monitor: DriftMonitor,
        tables: Tables,
        reader: BatchReader,
        delivery: Delivery,
        metrics: WorkerMetrics,
    ) -> None:
        """Make the pending assignment the owned one (tables must be recovered)."""
        if self.pending is None:
            return
        assigned, self.pending = self.pending, None
        for partition in sorted((self.owned - assigned) | self._lost):
            rescorer.drop_shard(partition)
            monitor.drop_partition(partition)
            metrics.set_partition(partition, None)
            self.positions.forget(partition)
            delivery.forget(partition)
            self.owned.discard(partition)
        self._lost.clear()
        new = assigned - self.owned
        restored = tables.records_of(new)
        for partition in sorted(new):
            items = restored[partition]
            checkpoint = tables.checkpoints.get(f"p{partition}", partition)
            shard = rescorer.restore_shard(
                partition, items, checkpoint if isinstance(checkpoint, dict) else None
            )
            monitor.rebuild(partition, evaluations(items))
            metrics.set_partition(
                partition, [(key, r.segment_id) for key, r in items if r.segment_id is not None]
            )
            self.positions.restore(partition, tables.position(partition))
            log.info(
                "partition %d: %d customers restored, watermark %s, next offset %s",
                partition, len(items), shard.watermark, self.positions.next_offset.get(partition),
            )  # fmt: skip
        wanted = {p: self.positions.next_offset.get(p) for p in assigned}
        for partition, offset in (await reader.assign(wanted)).items():
            self.positions.restore(partition, offset)
        self.owned = assigned
        self.reading = True
