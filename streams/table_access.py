"""Read and write a Faust table's store for a known partition.

Faust's table API finds the partition of a write from the *current event*.
The worker reads its events outside Faust's stream, in batches spanning
partitions, and writes from the sweep (no event at all), so it addresses the
store directly and sends the changelog records itself (`streams.delivery`).
Only the in-memory store is supported: it is one dict, rebuilt from the
changelog on start. (A RocksDB variant, one database per partition, was
tried and lost an update in a failover test; see the README.)
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, cast

import faust
from faust.stores.memory import Store as MemoryStore


class UnsupportedStore(RuntimeError):
    """A table store this worker cannot address by partition."""


class PartitionedTable:
    """`get`, `put` and `items` on a table's store with an explicit partition."""

    def __init__(self, table: faust.Table[Any, Any]) -> None:
        self.table = table
        self.changelog = cast(faust.Topic, table.changelog_topic).get_topic_name()

    @property
    def _memory(self) -> MemoryStore[Any, Any]:
        store = self.table.data
        if not isinstance(store, MemoryStore):
            raise UnsupportedStore(f"table store {type(store).__module__} is not supported")
        return store

    @property
    def _store(self) -> MutableMapping[Any, Any]:
        data: MutableMapping[Any, Any] = self._memory.data
        return data

    def get(self, key: str, partition: int) -> Any | None:
        """The value of `key` in `partition`'s state, or None."""
        return self._store.get(key)

    def put(self, key: str, partition: int, value: Any) -> None:
        """Store `value` for `key` (the changelog write is the caller's).

        The key's partition is recorded as Faust's recovery records it, so the
        store forgets the key when a later recovery finds the partition gone.
        """
        memory = self._memory
        memory.data[key] = value
        memory._key_partition[key] = partition

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every (key, value) of the partitions this worker holds."""
        yield from self._store.items()
