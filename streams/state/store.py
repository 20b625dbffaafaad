"""The worker's table store (``rescorer://``): memory for reads, a log file per partition.

Faust finds it by its URL scheme through the ``faust.stores`` entry point
(``pyproject.toml``). Each table gets one; per partition it keeps:

- for an *active* partition, every key's value in a dict, read and written
  by the worker (`get`, `put`), as bytes;
- for an active or *standby* partition, a `PartitionLog` on disk, the
  changelog's prefix up to an offset it records in the same write.

A value the worker `put`s is in memory at once and on disk once Kafka has
acknowledged its changelog record: `seal` marks what a flush is about to
cover, `commit` appends it with the acknowledged offset. Faust's recovery
asks `persisted_offset` and replays only the changelog after it; what it
replays (and a standby's stream) is appended the same way. When the group
gives this worker a partition, its file is checked against the changelog
(`streams.state.trust`) and rebuilt when it cannot be trusted: one warning,
and ``rescorer_store_wipes_total{reason}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from faust.stores.base import Store
from faust.types import TP, EventT

from streams.state.catch_up import catch_up
from streams.state.changelog_probe import ChangelogRecord
from streams.state.context import StoreContext
from streams.state.log_file import PartitionLog, Position, fingerprint, read_log
from streams.state.opening import open_partitions

log = logging.getLogger(__name__)

SCHEME = "rescorer"
COMPACTION_SLACK_BYTES = 256 * 1024
"""A file is compacted once it is 1.5 times its last compacted size plus this."""
OPTION = "rescorer_state"
"""The key of the `StoreContext` in a table's store options."""


class _ActiveView(Mapping[str, bytes]):
    """Faust's mapping view of the store: the active partitions, read-only."""

    def __init__(self, partitions: dict[int, dict[str, bytes]]) -> None:
        self._partitions = partitions

    def __getitem__(self, key: str) -> bytes:
        for data in self._partitions.values():
            if key in data:
                return data[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        for data in self._partitions.values():
            yield from data

    def __len__(self) -> int:
        return sum(len(data) for data in self._partitions.values())


class DurableStore(Store[str, bytes]):
    """One table's partitions in memory (active) and on disk (active and standby)."""

    def __init__(self, url: Any, app: Any, table: Any, **kwargs: Any) -> None:
        super().__init__(url, app, table, **kwargs)
        options = self.options or {}
        context = options.get(OPTION)
        if not isinstance(context, StoreContext):
            raise TypeError(f"a {SCHEME}:// store needs a StoreContext in options[{OPTION!r}]")
        self.context = context
        self.topic = table.changelog_topic.get_topic_name()
        self._active: dict[int, dict[str, bytes]] = {}
        self._logs: dict[int, PartitionLog] = {}
        self._staged: dict[int, dict[str, bytes | None]] = {}
        self._sealed: dict[int, dict[str, bytes | None]] = {}
        self._positions: dict[int, Position] = {}
        self._ends: dict[int, int] = {}
        """Per partition, an offset before which the store reflects every changelog
        offset (records, and transaction markers no consumer returns)."""
        self._starts: dict[int, int] = {}
        """Per partition, the changelog's first offset when the partition was opened."""
        self._stream_from: dict[int, int] = {}
        """Per partition, the offset at or before which the next changelog stream (Faust's
        recovery, a standby's reading) has to begin for the store to miss nothing."""
        self._gapped: set[int] = set()
        """Partitions whose stream began past what they lack: left to the catch-up."""
        self._compaction = asyncio.Lock()
        self._compacting: set[asyncio.Future[None]] = set()
        self.data = _ActiveView(self._active)  # type: ignore[assignment] # read-only on purpose

    # -- the worker's partition-addressed access ---------------------------------

    def get(self, key: str, partition: int) -> bytes | None:  # type: ignore[override]
        """The value of `key` in active `partition`, or None."""
        data = self._active.get(partition)
        return None if data is None else data.get(key)

    def put(self, key: str, partition: int, value: bytes) -> None:
        """Set `key` now; on disk once `commit` says its changelog record is acknowledged."""
        self._active[partition][key] = value
        self._staged.setdefault(partition, {})[key] = value

    def partition_data(self, partition: int) -> Mapping[str, bytes]:
        """Every key's value in active `partition`."""
        return self._active.get(partition, {})

    def seal(self) -> None:
        """What was put so far is what the coming flush acknowledges."""
        for partition, staged in self._staged.items():
            self._sealed.setdefault(partition, {}).update(staged)
        self._staged.clear()

    def commit(self, acknowledged: Mapping[int, Position]) -> None:
        """Write what was sealed, for partitions whose changelog reached these positions."""
        for partition, position in acknowledged.items():
            sealed = self._sealed.pop(partition, None)
            partition_log = self._logs.get(partition)
            if sealed and partition_log is not None:
                partition_log.append(sealed.items(), position)
                self._positions[partition] = position
                self._maybe_compact(partition, partition_log)

    def disk_bytes(self) -> int:
        """Bytes of this table's files of the partitions held."""
        return sum(partition_log.size for partition_log in self._logs.values())

    # -- Faust's store interface ----------------------------------------------------

    def persisted_offset(self, tp: TP) -> int | None:
        """The changelog offset the partition's file reflects (recovery reads after it)."""
        next_offset = self.next_offset(tp.partition)
        return None if next_offset is None else next_offset - 1

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Unused: offsets are written with the data (`commit`, `apply_changelog_batch`)."""

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT[Any]],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        """Recovery's (and a standby's) changelog records: memory if active, then disk."""
        grouped: dict[int, list[ChangelogRecord]] = {}
        for event in batch:
            message = event.message
            grouped.setdefault(message.partition, []).append(
                ChangelogRecord(message.offset, message.key, message.value)
            )
        for partition, records in grouped.items():
            self.apply(partition, records)

    def apply(
        self, partition: int, records: Sequence[ChangelogRecord], read_from: int | None = None
    ) -> None:
        """Changelog records of `partition`, in offset order: memory if active, then disk.

        Records of a partition no longer held are left out: buffered by a
        recovery that a rebalance has since interrupted, they are replayed by
        the partition's next owner itself. So are records at or before the
        position the partition already reflects (a recovery's buffer applied
        late): a store never goes back.

        A stream that begins past the first offset the store lacks is not
        applied either, nor is anything after it until the partition is
        positioned again: the file would claim the offsets in between. Faust's
        standby reading has been seen to begin at the changelog's end, not at
        a new store's start (the handover scenario lost a step's records that
        way); `StateTables.catch_up` reads what is missing when the partition
        is taken. `read_from`: the records are all the changelog holds from
        that offset on (the catch-up's own reading).
        """
        partition_log = self._logs.get(partition)
        if partition_log is None:
            return
        reached = self._positions.get(partition)
        if reached is not None:
            records = [r for r in records if r.offset > reached.offset]
        if read_from is not None:
            self._gapped.discard(partition)
            self._stream_from.pop(partition, None)
        elif partition in self._gapped:
            return
        if not records:
            return
        if read_from is None and (expected := self._stream_from.pop(partition, None)) is not None:
            # Exactly once, a transaction's commit marker takes the offset after its
            # last record: the next transaction's first record is one further on.
            tolerance = 0 if self.context.claim is None else 1
            if records[0].offset > expected + tolerance:
                self._gapped.add(partition)
                log.warning(
                    "store %s[%d]: the changelog stream began at offset %d, past offset %d "
                    "which the store lacks; left to the catch-up when the partition is taken",
                    self.table_name, partition, records[0].offset, expected,
                )  # fmt: skip
                return
        entries: dict[str, bytes | None] = {}
        for record in records:
            if record.key is None:
                raise TypeError(f"changelog record without a key: {record}")
            entries[record.key.decode()] = record.value
        data = self._active.get(partition)
        if data is not None:
            for name, value in entries.items():
                if value is None:
                    data.pop(name, None)
                else:
                    data[name] = value
        last = records[-1]
        position = Position(last.offset, fingerprint(last.key, last.value))
        self._positions[partition] = position
        partition_log.append(entries.items(), position)
        self._maybe_compact(partition, partition_log)

    def position(self, partition: int) -> Position | None:
        """The changelog position a held partition reflects (None: none yet)."""
        return self._positions.get(partition) if partition in self._logs else None

    def next_offset(self, partition: int) -> int | None:
        """The first changelog offset a held partition does not reflect (None: it
        reflects none)."""
        if partition not in self._logs:
            return None
        position = self._positions.get(partition)
        known = [position.offset + 1] if position is not None else []
        if (end := self._ends.get(partition)) is not None:
            known.append(end)
        return max(known, default=None)

    def read_to(self, partition: int, end: int) -> None:
        """The partition's changelog was read up to `end` (what lies between the last
        record and `end` are transaction markers, or nothing)."""
        if partition in self._logs:
            self._ends[partition] = max(end, self._ends.get(partition, end))

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        """Open, check and load the partitions now held; let go of the others."""
        mine = {tp.partition for tp in assigned if tp.topic == self.topic}
        standby = {
            tp.partition for tp in self.app.assignor.assigned_standbys() if tp.topic == self.topic
        }
        claim = self.context.claim
        if claim is not None:  # exactly once: fence the previous owners before reading
            await claim(mine - standby)
        for partition in sorted(set(self._logs) - mine):
            self._release(partition)
        opening = sorted(mine - set(self._logs))
        loaded: dict[int, dict[str, bytes]] = {}
        if opening:
            opened = await open_partitions(self.context, self.table_name, self.topic, opening)
            for partition, found in opened.items():
                self._logs[partition] = found.log
                self._ends.pop(partition, None)
                self._positions.pop(partition, None)
                if found.position is not None:
                    self._positions[partition] = found.position
                self._starts[partition] = found.start
                loaded[partition] = found.entries
        for partition in mine:  # Faust positions every stream anew: where must it begin?
            self._gapped.discard(partition)
            expected = self.next_offset(partition)
            self._stream_from[partition] = (
                self._starts.get(partition, 0) if expected is None else expected
            )
        for partition in sorted(mine):
            if partition in standby:
                self._active.pop(partition, None)
            elif partition not in self._active:
                entries = loaded.get(partition)
                if entries is None:  # held as a standby until now: its file is current
                    entries = read_log(self._logs[partition].path).entries
                self._active[partition] = entries
        if claim is not None:
            await catch_up(self.context.probe, [self], sorted(mine - standby), expected=True)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Nothing to drop: `on_rebalance` already keeps only what is held."""

    def reset_state(self) -> None:
        """Delete this table's files (``faust reset``-style wipe of local state)."""
        for partition in list(self._logs):
            self._logs.pop(partition).wipe()
        self._active.clear()
        self._positions.clear()
        self._ends.clear()
        self._stream_from.clear()
        self._gapped.clear()

    def _clear(self) -> None:
        self._active.clear()

    async def backup_partition(
        self, tp: TP | int, flush: bool = True, purge: bool = False, keep: int = 1
    ) -> None:
        """No backups: the changelog is the backup."""

    def restore_backup(self, tp: TP | int, latest: bool = True, backup_id: int = 0) -> None:
        """No backups: the changelog is the backup."""

    async def on_stop(self) -> None:
        """Let a compaction in progress finish, then close the files."""
        async with self._compaction:
            for partition in list(self._logs):
                self._release(partition)

    # -- partitions -------------------------------------------------------------------

    def _release(self, partition: int) -> None:
        partition_log = self._logs.pop(partition, None)
        if partition_log is not None:
            partition_log.close()
        self._active.pop(partition, None)
        self._staged.pop(partition, None)
        self._sealed.pop(partition, None)
        self._positions.pop(partition, None)
        self._ends.pop(partition, None)
        self._starts.pop(partition, None)
        self._stream_from.pop(partition, None)
        self._gapped.discard(partition)

    def _maybe_compact(self, partition: int, partition_log: PartitionLog) -> None:
        if partition_log.wants_compaction(COMPACTION_SLACK_BYTES) and not self._compaction.locked():
            task = asyncio.ensure_future(self._compact(partition, partition_log))
            self._compacting.add(task)
            task.add_done_callback(self._compacting.discard)

    async def _compact(self, partition: int, partition_log: PartitionLog) -> None:
        async with self._compaction:
            if self._logs.get(partition) is not partition_log:
                return
            upto = partition_log.compaction_point()
            temporary = await asyncio.to_thread(partition_log.write_snapshot, upto)
            if self._logs.get(partition) is not partition_log:
                temporary.unlink(missing_ok=True)
                return
            before = partition_log.size
            partition_log.finish_compaction(temporary, upto)
            log.info(
                "store %s[%d]: compacted %d to %d bytes",
                self.table_name, partition, before, partition_log.size,
            )  # fmt: skip
