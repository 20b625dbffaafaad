"""A partitioned log's events in event-time order, out of core: sorted runs, merged.

Replay takes events by event time, ties in input order: what a stable sort
of the inputs, concatenated, gives. The log (`offline.partitioned_log`) holds
them in partitions by customer, each about `EVENTS_PER_PARTITION` events and
each row with its input position (file, row). Each partition is sorted on
its own by (occurred_at, file, row) and written as a run; the runs are then
merged, a slice of each at a time. The key is unique (one input position per
row), so the merge's order is exactly the stable sort's. Memory holds one
partition while the runs are written, then one slice per run.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from offline.partitioned_log import ORDER, PartitionedLog

RUN_SLICE = 20_000
"""Rows of a run read at a time (and its Parquet row groups)."""
FIELDS = ("event_id", "customer_id", "type", "amount")
"""What each merged row carries after its key, whose first part is the event time."""

Row = tuple[int, int, int, str, str, str, float | None]
"""(occurred_at in epoch microseconds, file, row, *FIELDS): the key first."""


def _run(scan: pl.LazyFrame, path: Path) -> Path:
    scan.select(
        pl.col("occurred_at").dt.epoch("us").alias("at"),
        *ORDER,
        *FIELDS[:2],
        pl.col("type").cast(pl.String),
        "amount",
    ).sort("at", *ORDER).sink_parquet(path, row_group_size=RUN_SLICE, statistics=False,
                                      compression="uncompressed")  # fmt: skip
    return path


def _rows(path: Path) -> Iterator[Row]:
    scan = pl.scan_parquet(path)
    offset = 0
    while True:
        chunk = scan.slice(offset, RUN_SLICE).collect()
        if chunk.height == 0:
            return
        offset += chunk.height
        yield from chunk.iter_rows()  # (the run's columns, in `Row`'s order)


def time_ordered(log: PartitionedLog) -> Iterator[Row]:
    """The log's valid events by event time, ties in input order (runs under its directory)."""
    runs_dir = log.directory / "time-runs"
    runs_dir.mkdir(exist_ok=True)
    runs = [
        _run(scan, runs_dir / f"run{index:05d}.parquet")
        for index, scan in enumerate(log.partition_scans())
    ]
    return heapq.merge(*(_rows(run) for run in runs))
