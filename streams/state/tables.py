"""The worker's state: three changelog-backed tables, their keys, their writes, the positions.

- ``customers``: each customer's `CustomerRecord`, by customer id;
- ``centroids``: each partition's online-centroid checkpoint, under ``p{partition}``;
- ``positions``: each partition's next input offset, under ``p{partition}``.

Values are bytes in every store (records in their changelog form, the other
two as JSON). A write goes to the table's store and, as a record, to its
changelog through the step's outbox; `streams.delivery` decides when. The
durable store keeps a write in memory at once and on disk once its changelog
record is acknowledged: `sealing` marks what a flush is about to cover,
`acknowledged` takes the offsets Kafka gave it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, cast

import faust
from faust.stores.memory import Store as MemoryStore

from scoring.customer_record import CustomerRecord
from scoring.standings import Standings
from streams.faust_internals import partition_of_keys, remember_partition
from streams.state.catch_up import catch_up
from streams.state.context import StoreContext
from streams.state.log_file import Position
from streams.state.positions import Positions
from streams.state.store import OPTION, DurableStore

RECORDS = "customers"
CHECKPOINTS = "centroids"
POSITIONS = "positions"
TABLES = (RECORDS, CHECKPOINTS, POSITIONS)


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic Faust gives `table` of app `app_id` (checked against Faust's
    own name for it in tests/unit/test_topics.py)."""
    return f"{app_id}-{table}-changelog"


def partition_key(partition: int) -> str:
    """The key of a partition's checkpoint and of its position."""
    return f"p{partition}"


class TableStore(Protocol):
    """Partition-addressed access to one table's store."""

    def get(self, key: str, partition: int) -> bytes | None: ...
    def put(self, key: str, partition: int, value: bytes) -> None: ...
    def partition_data(self, partition: int) -> Mapping[str, bytes]: ...
    def seal(self) -> None: ...
    def commit(self, acknowledged: Mapping[int, Position]) -> None: ...
    def disk_bytes(self) -> int: ...


class Outbox(Protocol):
    """Where changelog records go (the step's batches, `streams.delivery`)."""

    async def send(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None: ...


class MemoryTableStore:
    """Faust's in-memory store (``memory://``), addressed by partition.

    One dict for every partition: a key lives in exactly one (customer ids
    hash to one partition, the others carry theirs), and Faust's recovery
    records each key's partition so that it can forget the ones gone.
    Nothing is on disk: every start replays the whole changelog.
    """

    def __init__(self, store: MemoryStore[Any, Any]) -> None:
        self.store = store

    def get(self, key: str, partition: int) -> bytes | None:
        value: bytes | None = self.store.data.get(key)
        return value

    def put(self, key: str, partition: int, value: bytes) -> None:
        self.store.data[key] = value
        remember_partition(self.store, key, partition)

    def partition_data(self, partition: int) -> Mapping[str, bytes]:
        owner = partition_of_keys(self.store)
        return {k: v for k, v in self.store.data.items() if owner.get(k) == partition}

    def seal(self) -> None:
        """Nothing to make durable."""

    def commit(self, acknowledged: Mapping[int, Position]) -> None:
        """Nothing to make durable."""

    def disk_bytes(self) -> int:
        return 0


class Table:
    """One Faust table whose store the worker addresses by partition."""

    def __init__(
        self, app: faust.App, name: str, partitions: int, context: StoreContext | None
    ) -> None:
        options = {OPTION: context} if context is not None else None
        table = cast(
            "faust.Table[str, Any]",
            app.Table(name, key_type=str, partitions=partitions, options=options),
        )
        # Keys and values travel as bytes; the store is built lazily, the changelog is not.
        table.key_serializer = table.value_serializer = "raw"
        changelog = cast(faust.Topic, table.changelog_topic)
        changelog.key_serializer = changelog.value_serializer = "raw"
        self.table = table
        self.name = name
        self.changelog = changelog.get_topic_name()
        self._store: TableStore | None = None

    @property
    def store(self) -> TableStore:
        if self._store is None:
            data = self.table.data
            if isinstance(data, DurableStore):
                self._store = data
            elif isinstance(data, MemoryStore):
                self._store = MemoryTableStore(data)
            else:
                raise TypeError(f"table store {type(data).__module__} is not supported")
        return self._store


class StateTables:
    """The three tables, their key scheme, their changelog writes, the input positions."""

    def __init__(
        self, app: faust.App, partitions: int, context: StoreContext | None = None
    ) -> None:
        self.records = Table(app, RECORDS, partitions, context)
        self.checkpoints = Table(app, CHECKPOINTS, partitions, context)
        self.position_table = Table(app, POSITIONS, partitions, context)
        self.positions = Positions()
        self.context = context

    @property
    def all(self) -> tuple[Table, Table, Table]:
        return (self.records, self.checkpoints, self.position_table)

    # -- reads ----------------------------------------------------------------------

    def record(self, key: str, partition: int) -> CustomerRecord | None:
        """A customer's record, decoded from the bytes the store keeps."""
        data = self.records.store.get(key, partition)
        return None if data is None else CustomerRecord.loads(data)

    def find_record(self, key: str, partitions: Iterable[int]) -> CustomerRecord | None:
        """A customer's record in whichever of `partitions` holds it."""
        for partition in partitions:
            record = self.record(key, partition)
            if record is not None:
                return record
        return None

    def standings(self, partition: int) -> Standings:
        """Where every customer of `partition` stands, as columns."""
        data = self.records.store.partition_data(partition)
        return Standings.of_values(list(data.keys()), list(data.values()))

    def checkpoint(self, partition: int) -> dict[str, object] | None:
        """A partition's centroid checkpoint, or None."""
        data = self.checkpoints.store.get(partition_key(partition), partition)
        value = None if data is None else json.loads(data)
        return value if isinstance(value, dict) else None

    def persisted_position(self, partition: int) -> int | None:
        """The persisted next input offset of a partition, or None (never processed)."""
        data = self.position_table.store.get(partition_key(partition), partition)
        if data is None:
            # Before positions had a table of their own they lived in the
            # centroids table as "o{n}"; read them there once after an upgrade.
            data = self.checkpoints.store.get(f"o{partition}", partition)
        stored = None if data is None else json.loads(data)
        offset = stored.get("next_offset") if isinstance(stored, dict) else None
        return offset if isinstance(offset, int) else None

    def disk_bytes(self) -> dict[str, int]:
        """Bytes on disk per table, for the partitions held."""
        return {table.name: table.store.disk_bytes() for table in self.all}

    # -- writes, in the order `streams.delivery` calls them ------------------------------

    async def write(
        self,
        outbox: Outbox,
        records: Mapping[str, CustomerRecord],
        checkpoints: Mapping[int, dict[str, object]],
    ) -> None:
        """Customer records and centroid checkpoints, to the stores and their changelogs."""
        store, topic = self.records.store, self.records.changelog
        for key, record in records.items():
            data = record.dumps()
            store.put(key, record.partition, data)
            await outbox.send(topic, record.partition, key.encode(), data)
        for partition, checkpoint in checkpoints.items():
            await self._put(outbox, self.checkpoints, partition, checkpoint)

    async def write_positions(self, outbox: Outbox) -> None:
        """The held positions: the records they stand after were acknowledged."""
        for partition, next_offset in self.positions.release().items():
            await self._put(outbox, self.position_table, partition, {"next_offset": next_offset})

    async def _put(
        self, outbox: Outbox, table: Table, partition: int, value: dict[str, object]
    ) -> None:
        key = partition_key(partition)
        data = json.dumps(value).encode()
        table.store.put(key, partition, data)
        await outbox.send(table.changelog, partition, key.encode(), data)

    def sealing(self) -> None:
        """A flush starts: everything written so far is what it acknowledges."""
        for table in self.all:
            table.store.seal()
        self.positions.seal()

    def acknowledged(self, offsets: Mapping[tuple[str, int], Position]) -> None:
        """The flush succeeded: Kafka holds the sealed writes, at these offsets."""
        for table in self.all:
            reached = {p: pos for (topic, p), pos in offsets.items() if topic == table.changelog}
            if reached:
                table.store.commit(reached)
        self.positions.acknowledged()

    async def catch_up(self, partitions: Iterable[int]) -> dict[str, int]:
        """Read what recovery left unread of the partitions' changelogs into their
        durable stores (`streams.state.catch_up`); records read per table. The
        memory store keeps no position to compare: nothing happens."""
        if self.context is None:
            return {}
        stores = [t.store for t in self.all if isinstance(t.store, DurableStore)]
        return await catch_up(self.context.probe, stores, partitions)

    def forget(self, partition: int) -> None:
        """A partition is gone: its positions are no longer this worker's."""
        self.positions.forget(partition)
