"""Read and write a Faust table's store for a known partition.

Faust's table API finds the partition of a write from the *current event*.
The worker processes events in batches (several partitions per batch) and
writes from the sweep timer (no event at all), so it addresses the store
directly: the in-memory store is one dict; the RocksDB store keeps one
database per partition and is written to the partition the record belongs to,
exactly as Faust's changelog recovery does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust
from faust.stores.memory import Store as MemoryStore

try:  # the RocksDB store imports fine without rocksdict, but check anyway
    from faust.stores.rocksdb import Store as RocksStore
except ImportError:  # pragma: no cover - depends on the installation
    RocksStore = None  # type: ignore[assignment,misc]


class UnsupportedStore(RuntimeError):
    """A table store this worker cannot address by partition."""


class PartitionedTable:
    """`get`, `put` and `items` on a table's store with an explicit partition."""

    def __init__(self, table: faust.Table[Any, Any]) -> None:
        self.table = table

    @property
    def _store(self) -> Any:
        store = self.table.data
        if isinstance(store, MemoryStore) or (
            RocksStore is not None and isinstance(store, RocksStore)
        ):
            return store
        raise UnsupportedStore(
            f"table store {type(store).__module__} is not supported; use memory:// or rocksdb://"
        )

    def get(self, key: str, partition: int) -> Any | None:
        """The value of `key` in `partition`'s state, or None."""
        store = self._store
        if isinstance(store, MemoryStore):
            return store.data.get(key)
        raw = store._db_for_partition(partition).get(store._encode_key(key))
        return None if raw is None else store._decode_value(raw)

    def put(self, key: str, partition: int, value: Any) -> None:
        """Store `value` for `key` in `partition`'s state (the changelog is the caller's)."""
        store = self._store
        if isinstance(store, MemoryStore):
            store.data[key] = value
            return
        encoded = store._encode_key(key)
        store._db_for_partition(partition).put(encoded, store._encode_value(value))
        store._key_index[encoded] = partition

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every (key, value) of the partitions this worker holds."""
        store = self._store
        if isinstance(store, MemoryStore):
            yield from store.data.items()
            return
        yield from store.items()
