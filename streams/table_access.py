"""Read and write a Faust table's store for a known partition.

Faust's table API finds the partition of a write from the *current event*.
The worker processes events in batches (several partitions per batch) and
writes from the sweep timer (no event at all), so it addresses the store
directly. Only the in-memory store is supported: it is one dict, rebuilt from
the changelog on start. (A RocksDB variant, one database per partition, was
tried and lost an update in a failover test; see the README.)
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import faust
from faust.stores.memory import Store as MemoryStore


class UnsupportedStore(RuntimeError):
    """A table store this worker cannot address by partition."""


class PartitionedTable:
    """`get`, `put` and `items` on a table's store with an explicit partition."""

    def __init__(self, table: faust.Table[Any, Any]) -> None:
        self.table = table

    @property
    def _store(self) -> MutableMapping[Any, Any]:
        store = self.table.data
        if not isinstance(store, MemoryStore):
            raise UnsupportedStore(f"table store {type(store).__module__} is not supported")
        data: MutableMapping[Any, Any] = store.data
        return data

    def get(self, key: str, partition: int) -> Any | None:
        """The value of `key` in `partition`'s state, or None."""
        return self._store.get(key)

    def put(self, key: str, partition: int, value: Any) -> None:
        """Store `value` for `key` (the changelog write is the caller's)."""
        self._store[key] = value

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every (key, value) of the partitions this worker holds."""
        yield from self._store.items()
