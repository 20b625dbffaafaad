"""Event files split by customer on local disk: training out of core.

One streaming pass reads each input file (polars' lazy scans), validates it
column-wise and writes its rows to Parquet partitions by a hash of the
customer id (rejected rows to a partition of their own). A customer's events
all land in one partition, so the per-customer table is computed one
partition at a time and memory holds one partition's events, never the whole
history. Partitions keep each row's (file, row) position, so "first
occurrence in input order" means the same as in memory.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import polars as pl

from offline.customer_table import CustomerTable, Horizon, customer_table
from offline.errors import InputError
from offline.event_files import (
    RAW_SCHEMA,
    REQUIRED,
    SUFFIXES,
    expand_paths,
    read_jsonl_lines,
    unreadable,
)
from offline.event_validation import EVENT_SCHEMA, EXAMPLES, Rejections, checked
from offline.events_io import check_rejections
from offline.history import Span

EVENTS_PER_PARTITION = 1_500_000
"""Aim: about this many events in memory at a time (about 100 MiB)."""
BYTES_PER_TEXT_EVENT = 60
"""A CSV or JSON Lines event's size on disk, for the partition count."""
REJECTED = -1
ORDER = ("file", "row")
HASH_SEED = 20_240_917
NOT_JSON_LINE = "line is not a JSON object"


def _scan(path: Path) -> pl.LazyFrame:
    kind = SUFFIXES[path.suffix.lower()]
    if kind == "csv":
        return pl.scan_csv(path, infer_schema=False)
    if kind == "parquet":
        return pl.scan_parquet(path)
    return pl.scan_ndjson(path, schema=RAW_SCHEMA)


def _estimated_events(path: Path) -> int:
    if SUFFIXES[path.suffix.lower()] == "parquet":
        try:
            return int(pl.scan_parquet(path).select(pl.len()).collect().item())
        except (OSError, pl.exceptions.PolarsError):
            return 0  # reported when the file is read
    return path.stat().st_size // BYTES_PER_TEXT_EVENT


def estimated_events(files: Sequence[Path]) -> int:
    """About how many events `files` hold (exactly, for Parquet)."""
    return sum(_estimated_events(f) for f in files)


def partition_count(files: Sequence[Path], more_events: int = 0) -> int:
    """How many partitions keep one partition's events near `EVENTS_PER_PARTITION`
    (for `files` and `more_events` from elsewhere)."""
    return max(1, math.ceil((estimated_events(files) + more_events) / EVENTS_PER_PARTITION))


@dataclass
class PartitionedLog:
    """An `offline.history.EventHistory` over Parquet partitions in `directory`."""

    directory: Path
    partitions: int
    rejections: Rejections
    sources: list[str]
    _owned: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def __enter__(self) -> PartitionedLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the partitions (when this log made their directory)."""
        if self._owned is not None:
            self._owned.cleanup()
            self._owned = None

    def _files(self, partition: int) -> list[Path]:
        return sorted(self.directory.glob(f"f*/bucket={partition}/*.parquet"))

    def _scan(self, partition: int) -> pl.LazyFrame | None:
        files = self._files(partition)
        if not files:
            return None
        return pl.scan_parquet(files, hive_partitioning=False).select(*EVENT_SCHEMA, *ORDER)

    def partition_scans(self) -> list[pl.LazyFrame]:
        """Each partition's valid events, with their `ORDER` columns."""
        scans = (self._scan(p) for p in range(self.partitions))
        return [s for s in scans if s is not None]

    def span(self) -> Span:
        """Time span and size of the valid events."""
        files = [f for p in range(self.partitions) for f in self._files(p)]
        row = (
            pl.scan_parquet(files, hive_partitioning=False)
            .select(
                pl.col("occurred_at").min().alias("earliest"),
                pl.col("occurred_at").max().alias("latest"),
                pl.len().alias("events"),
            )
            .collect()
            .row(0, named=True)
        )
        return Span(row["earliest"], row["latest"], int(row["events"]))

    def customers(self, horizon: Horizon) -> CustomerTable:
        """The per-customer table, one partition in memory at a time."""
        return customer_table(self.partition_scans(), horizon, ORDER)

    def events_of(self, customer_ids: pl.Series) -> pl.DataFrame:
        """The events of these customers, reading only the partitions that hold them."""
        wanted = customer_ids.unique()
        homes = (wanted.hash(HASH_SEED) % self.partitions).unique().sort().to_list()
        found = [
            scan.filter(pl.col("customer_id").is_in(wanted.implode())).collect()
            for p in homes
            if (scan := self._scan(int(p))) is not None
        ]
        if not found:
            return pl.DataFrame(schema=EVENT_SCHEMA)
        return pl.concat(found).sort(ORDER).drop(ORDER)


def _split(raw: pl.LazyFrame, index: int, partitions: int, out: Path) -> None:
    rows = checked(raw).with_row_index("row").with_columns(pl.lit(index, pl.UInt32).alias("file"))
    home = (
        pl.when(pl.col("reason").is_null())
        .then((pl.col("customer_id").hash(HASH_SEED) % partitions).cast(pl.Int64))
        .otherwise(pl.lit(REJECTED, pl.Int64))
    )
    valid_columns = [*EVENT_SCHEMA, *ORDER]
    rows.with_columns(home.alias("bucket")).select(
        *valid_columns, "reason", "raw", "bucket"
    ).sink_parquet(
        pl.PartitionBy(out, key="bucket", include_key=False),
        mkdir=True,
        maintain_order=True,
        compression="uncompressed",  # a scratch copy: speed over size
        statistics=False,
    )


def partition_events(
    patterns: Sequence[str],
    max_reject_share: float = 0.01,
    work_dir: str | None = None,
    partitions: int | None = None,
) -> PartitionedLog:
    """Read, validate and split event files by customer under `work_dir` (a temporary dir).

    The same rules and errors as `offline.events_io.load_events`; close the
    log (or use it as a context manager) to remove the partitions.
    """
    files = event_files(patterns)
    log = new_log(work_dir, partitions or partition_count(files), [str(f) for f in files])
    try:
        unparsable = split_files(log, files)
        finish_split(log, {NOT_JSON_LINE: (len(unparsable), unparsable)}, max_reject_share)
    except BaseException:
        log.close()
        raise
    return log


def event_files(patterns: Sequence[str]) -> list[Path]:
    """The files `patterns` name (`InputError` when there are none)."""
    files = expand_paths(patterns)
    if not files:
        raise InputError("no event files given")
    return files


def new_log(work_dir: str | None, partitions: int, sources: list[str]) -> PartitionedLog:
    """An empty log of `partitions` partitions in a new temporary directory under `work_dir`."""
    if work_dir is not None and not Path(work_dir).is_dir():
        raise InputError(f"work directory {work_dir} does not exist")
    owned = tempfile.TemporaryDirectory(prefix="rescorer-events-", dir=work_dir)
    return PartitionedLog(Path(owned.name), partitions, Rejections(), sources, owned)


def split_files(log: PartitionedLog, files: Sequence[Path]) -> list[str]:
    """Split `files` into the log as its inputs 0, 1, ...; the lines that were not JSON."""
    unparsable: list[str] = []
    for index, path in enumerate(files):
        unparsable.extend(split_file(log, index, path))
    return unparsable


def split_file(log: PartitionedLog, index: int, path: Path) -> list[str]:
    """Validate one file and add its rows to the log's partitions as input number `index`;
    the (start of the) JSON Lines that were not JSON objects."""
    out = log.directory / f"f{index:05d}"
    try:
        raw = _scan(path)
        # (JSON Lines are scanned with every contract column: none is missing.)
        missing = [c for c in REQUIRED if c not in raw.collect_schema()]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        try:
            _split(raw, index, log.partitions, out)
        except pl.exceptions.ComputeError:
            if SUFFIXES[path.suffix.lower()] != "jsonl":
                raise
            # A line that is not JSON: read line by line, rejecting such lines.
            shutil.rmtree(out, ignore_errors=True)
            frame, bad = read_jsonl_lines(path)
            _split(frame.lazy(), index, log.partitions, out)
            return bad
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise unreadable(path, exc) from exc
    return []


def finish_split(
    log: PartitionedLog,
    unparsable: Mapping[str, tuple[int, Sequence[str]]],
    max_reject_share: float,
) -> None:
    """Count the split's rows and rejections (`unparsable`: per reason, how many inputs
    were not JSON objects, and examples), and refuse it above `max_reject_share` of bad rows
    (`offline.events_io.check_rejections`)."""
    _count_rows(log, unparsable)
    check_rejections(log.rejections, log.rejections.total_rows - log.rejections.rejected,
                     max_reject_share)  # fmt: skip


def _count_rows(log: PartitionedLog, unparsable: Mapping[str, tuple[int, Sequence[str]]]) -> None:
    rejections = log.rejections
    all_files = sorted(log.directory.glob("f*/bucket=*/*.parquet"))
    if all_files:
        rejections.total_rows = int(
            pl.scan_parquet(all_files, hive_partitioning=False).select(pl.len()).collect().item()
        )
    for reason, (count, examples) in unparsable.items():
        rejections.total_rows += count
        if count:
            rejections.add(reason, count, list(examples[:EXAMPLES]))
    rejected = log._files(REJECTED)
    if not rejected:
        return
    by_reason = (
        pl.scan_parquet(rejected, hive_partitioning=False)
        .group_by("reason", maintain_order=True)
        .agg(pl.len().alias("count"), pl.col("raw").head(EXAMPLES).alias("examples"))
        .collect()
    )
    for row in by_reason.iter_rows(named=True):
        rejections.add(str(row["reason"]), int(row["count"]), list(row["examples"]))
