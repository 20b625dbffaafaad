"""Which event partitions this worker owns, and bringing a partition up from its state.

Faust's consumer group decides; this module follows. Faust revokes every
partition at the start of a rebalance and assigns the new set once the group
agrees; table recovery then restores the changelogs. So:

- on revoke, reading stops (the caller holds the lock, so a batch in flight
  is finished first, before the rebalance can hand its partitions over), and
  an assignment not yet taken is void: its partitions are being handed over;
- on assign, the new set is remembered with the group generation it belongs
  to and the rebalances begun so far; a partition missing from any assignment
  since the last sync has been someone else's in between, and its in-memory
  state is stale;
- once recovery is complete *for that generation*, with no rebalance begun
  since (`recovered`), `sync` drops the partitions gone, makes sure the new
  ones' stores hold their whole changelogs (`StateTables.catch_up`), restores
  them (clock, due index, centroids, drift population, input position) from
  the recovered tables, and points the batch reader at exactly the owned
  partitions, each at its persisted position.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from scoring.drift_monitor import DriftMonitor
from scoring.populations import Populations
from scoring.reassignment import Rescorer
from streams.batch_reader import BatchReader
from streams.metrics import WorkerMetrics
from streams.state.tables import StateTables

log = logging.getLogger(__name__)


@dataclass
class Ownership:
    """The owned event partitions, and the assignment Faust most recently made."""

    owned: set[int] = field(default_factory=set)
    pending: set[int] | None = None
    reading: bool = False
    _lost: set[int] = field(default_factory=set)
    _generation: int = -1
    _revocations: int = -1

    def on_revoked(self) -> None:
        """A rebalance started: stop reading, and forget an assignment not yet taken."""
        self.reading = False
        self.pending = None

    def on_assigned(self, partitions: Iterable[int], generation: int, revocations: int) -> None:
        """The group's new assignment of event partitions to this worker.

        `generation` is the group generation it belongs to, `revocations` the
        count of rebalances begun when it arrived.
        """
        assigned = set(partitions)
        self._lost |= self.owned - assigned
        self.pending = assigned
        self._generation, self._revocations = generation, revocations

    def recovered(self, recovered_generation: int | None, revocations: int) -> bool:
        """Whether the pending assignment can be taken: its generation's tables are
        recovered, and no rebalance has begun since it arrived.

        >>> ownership = Ownership()
        >>> ownership.on_assigned({0, 1}, generation=4, revocations=7)
        >>> ownership.recovered(3, 7), ownership.recovered(4, 8), ownership.recovered(4, 7)
        (False, False, True)
        """
        return (
            self.pending is not None
            and recovered_generation == self._generation
            and revocations == self._revocations
        )

    async def sync(
        self,
        rescorer: Rescorer,
        monitor: DriftMonitor,
        populations: Populations,
        state: StateTables,
        reader: BatchReader,
        metrics: WorkerMetrics,
    ) -> None:
        """Make the pending assignment the owned one (tables must be recovered)."""
        if self.pending is None:
            return
        assigned, self.pending = self.pending, None
        positions = state.positions
        for partition in sorted((self.owned - assigned) | self._lost):
            rescorer.drop_shard(partition)
            monitor.drop_partition(partition)
            populations.drop_partition(partition)
            metrics.drop_partition(partition)
            state.forget(partition)
            self.owned.discard(partition)
        self._lost.clear()
        for table, records in (await state.catch_up(assigned - self.owned)).items():
            metrics.store_caught_up.labels(table).inc(records)
        for partition in sorted(assigned - self.owned):
            began = time.perf_counter()
            standings = state.standings(partition)
            shard = rescorer.restore_shard(partition, standings, state.checkpoint(partition))
            monitor.rebuild(partition, standings)
            populations.set_partition(partition, standings)
            positions.restore(partition, state.persisted_position(partition))
            log.info(
                "partition %d: %d customers restored in %.2fs, watermark %s, next offset %s",
                partition, len(standings), time.perf_counter() - began, shard.watermark,
                positions.next_offset.get(partition),
            )  # fmt: skip
        wanted = {p: positions.next_offset.get(p) for p in assigned}
        for partition, offset in (await reader.assign(wanted)).items():
            positions.restore(partition, offset)
        metrics.publish_populations(populations)
        self.owned = assigned
        self.reading = True
