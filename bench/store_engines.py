"""Benchmark: the durable store's engine beside SQLite (and RocksDB, if rocksdict is installed).

What the worker asks of a store, with records of the size the stream bench
measures (about 200 bytes, customer ids as keys), in one run:

- ``write``: steps of 2,000 updated records at random keys, each with its
  changelog offset in the same atomic write (a frame; one transaction; one
  write batch), microseconds per record;
- ``load``: every record of a cold start read into memory, microseconds per
  record;
- ``disk``: bytes on disk per record after the writes.

Usage: ``python bench/store_engines.py [--records 1000000] [--steps 200]``
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from streams.state.log_file import LogMeta, PartitionLog, Position, read_log

RECORD = (
    b'{"f":1,"p":3,"w":365,"lp":1735689600000000,"d":[[20089,2,45000000],[20100,1,12000000]],'
    b'"s":[["ev-123456-1",20089],["ev-123456-2",20089],["ev-123456-3",20100]],"seg":2,"mv":1,'
    b'"at":1735689600000000,"v":[12.5,3,57.0]}'
)
STEP = 2_000


def key(n: int) -> str:
    return f"customer-{n:09d}"


def ours(directory: Path, records: int, steps: list[list[int]]) -> tuple[float, float, int]:
    path = directory / "p0.log"
    log = PartitionLog.create(path, LogMeta("bench", "customers", "bench-changelog", 0))
    log.append(((key(n), RECORD) for n in range(records)), Position(records, 0))
    began = time.perf_counter()
    for offset, step in enumerate(steps, start=records):
        log.append(((key(n), RECORD) for n in step), Position(offset, 0))
    write = time.perf_counter() - began
    log.close()
    began = time.perf_counter()
    loaded = read_log(path).entries
    load = time.perf_counter() - began
    assert len(loaded) == records
    return write, load, path.stat().st_size


def sqlite(directory: Path, records: int, steps: list[list[int]]) -> tuple[float, float, int]:
    path = directory / "p0.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=normal")
    db.execute("create table kv (k text primary key, v blob) without rowid")
    db.execute("create table offsets (t text primary key, o integer)")
    db.execute("begin")
    db.executemany("insert into kv values (?, ?)", ((key(n), RECORD) for n in range(records)))
    db.execute("commit")
    began = time.perf_counter()
    for offset, step in enumerate(steps, start=records):
        db.execute("begin")
        db.executemany("insert or replace into kv values (?, ?)", ((key(n), RECORD) for n in step))
        db.execute("insert or replace into offsets values ('c', ?)", (offset,))
        db.execute("commit")
    write = time.perf_counter() - began
    db.execute("pragma wal_checkpoint(truncate)")
    db.close()
    began = time.perf_counter()
    db = sqlite3.connect(path)
    loaded = dict(db.execute("select k, v from kv"))
    load = time.perf_counter() - began
    db.close()
    assert len(loaded) == records
    return write, load, path.stat().st_size


def rocksdb(directory: Path, records: int, steps: list[list[int]]) -> tuple[float, float, int]:
    from rocksdict import Options, Rdict, WriteBatch

    path = directory / "p0.rocksdb"
    db = Rdict(str(path), Options(raw_mode=True))
    batch = WriteBatch(raw_mode=True)
    for n in range(records):
        batch.put(key(n).encode(), RECORD)
    db.write(batch)
    began = time.perf_counter()
    for offset, step in enumerate(steps, start=records):
        batch = WriteBatch(raw_mode=True)
        for n in step:
            batch.put(key(n).encode(), RECORD)
        batch.put(b"__offset", str(offset).encode())
        db.write(batch)
    write = time.perf_counter() - began
    db.close()
    began = time.perf_counter()
    db = Rdict(str(path), Options(raw_mode=True))
    loaded = {k.decode(): v for k, v in db.items() if k != b"__offset"}
    load = time.perf_counter() - began
    db.close()
    assert len(loaded) == records
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return write, load, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    steps = [[rng.randrange(args.records) for _ in range(STEP)] for _ in range(args.steps)]
    engines: dict[str, Callable[[Path, int, list[list[int]]], tuple[float, float, int]]] = {
        "log (rescorer://)": ours,
        "sqlite (WAL)": sqlite,
    }
    if importlib.util.find_spec("rocksdict") is not None:
        engines["rocksdb (rocksdict)"] = rocksdb
    else:
        print("rocksdict not installed: RocksDB left out (pip install rocksdict)")
    written = args.steps * STEP
    print(f"{args.records:,} records of {len(RECORD)} bytes, {args.steps} steps of {STEP:,}")
    results = {}
    for name, run in engines.items():
        directory = Path(tempfile.mkdtemp(prefix="engines-"))
        try:
            write, load, size = run(directory, args.records, steps)
        finally:
            shutil.rmtree(directory)
        results[name] = (write, load, size)
        print(f"{name:<20} write {1e6 * write / written:6.2f} us/record   "
              f"load {1e6 * load / args.records:6.2f} us/record ({load:5.2f} s)   "
              f"disk {size / args.records:6.0f} bytes/record")  # fmt: skip
    ours_write, ours_load, _ = results["log (rescorer://)"]
    sql_write, sql_load, _ = results["sqlite (WAL)"]
    print(
        f"RESULT records={args.records} log_write_us={1e6 * ours_write / written:.2f} "
        f"log_load_s={ours_load:.2f} sqlite_write_us={1e6 * sql_write / written:.2f} "
        f"sqlite_load_s={sql_load:.2f}"
    )


if __name__ == "__main__":
    main()
