"""The event history on Apache Spark: the per-customer table computed by a cluster.

`rescorer train --engine spark` reads the event files with Spark (local mode by
default, any Spark 4 master by URL; paths local or any Hadoop-compatible URL),
validates them with the contract's rules, and computes the same per-customer
table as `offline.customer_table` (same horizons, UTC days, first occurrence,
micro-units). Only that table (one row per customer) and the events of the
sensitivity sample come back to this process; training goes on as usual.

"First occurrence in input order" needs an order Spark does not keep by
itself: files are numbered as the polars engine numbers them (arguments in
order, a directory's or glob's files sorted), and within a file a row's place
is (start of its split, its position in the split's partition), which follows
the file because a partition reads its splits front to back.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

import polars as pl

from offline.customer_table import (
    CHANNELS_SCHEMA,
    TABLE_SCHEMA,
    THEN,
    CustomerTable,
    Horizon,
)
from offline.errors import InputError
from offline.event_files import RAW_SCHEMA, REQUIRED, SUFFIXES, expand_paths
from offline.event_validation import EVENT_SCHEMA, EXAMPLES, TZ_SUFFIX, Rejections
from offline.events_io import check_rejections
from offline.history import Span
from schemas._base import ID_MAX_LENGTH
from schemas.events import CHANNEL_MAX_LENGTH, CURRENCY_PATTERN, MONETARY_TYPES, RULES, EventType
from scoring.rfm import MICROS_PER_DAY, MICROS_PER_UNIT

try:
    from py4j.protocol import Py4JJavaError
    from pyspark.sql import Column, DataFrame, SparkSession, Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - the [spark] extra is missing
    raise InputError(
        "--engine spark needs PySpark 4: pip install 'segment-rescorer[spark]'"
    ) from exc

DEFAULT_MASTER = "local[*]"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LOCAL_DRIVER_MEMORY = "2g"
ORDER = ("_file", "_block", "_row")
_ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?[+-]\d{2}(:?\d{2})?$"


def session(master: str | None = None) -> SparkSession:
    """A Spark session that computes in UTC with non-ANSI (lenient) casts, as polars does."""
    url = master or os.environ.get("RESCORER_SPARK_MASTER") or DEFAULT_MASTER
    builder = (
        SparkSession.builder.master(url)
        .appName("rescorer-train")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.parquet.enableVectorizedReader", "true")
    )
    if url.startswith("local"):
        memory = os.environ.get("RESCORER_SPARK_DRIVER_MEMORY", LOCAL_DRIVER_MEMORY)
        builder = builder.config("spark.ui.enabled", "false").config("spark.driver.memory", memory)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _has_scheme(path: str) -> bool:
    head, sep, _ = path.partition("://")
    return bool(sep) and head.isalnum() and len(head) > 1


def _suffix(path: str) -> str:
    return PurePosixPath(path).suffix.lower()


@dataclass(frozen=True)
class InputFile:
    """A file as Spark reads it (a path) and as Spark reports a row's file (a URI)."""

    path: str
    uri: str

    @property
    def kind(self) -> str:
        """csv, parquet or jsonl, from the suffix."""
        return SUFFIXES[_suffix(self.path)]


def _remote_files(spark: SparkSession, pattern: str) -> list[InputFile]:
    """Files a URL names (a file, a directory, a glob), listed through Hadoop, sorted."""
    jvm: Any = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    files: list[InputFile] = []
    try:
        path = jvm.org.apache.hadoop.fs.Path(pattern)
        fs = path.getFileSystem(conf)
        for status in fs.globStatus(path) or []:
            if status.isDirectory():
                listing = fs.listFiles(status.getPath(), True)
                found = [listing.next().getPath()]
                while listing.hasNext():
                    found.append(listing.next().getPath())
            else:
                found = [status.getPath()]
            files.extend(InputFile(str(p.toString()), str(p.toUri().toString())) for p in found)
    except Py4JJavaError as exc:
        cause = exc.java_exception
        raise InputError(
            f"{pattern}: {cause.getClass().getSimpleName()}: {cause.getMessage()}"
        ) from None
    if not files:
        raise InputError(f"no such file or directory: {pattern}")
    chosen = sorted((f for f in files if _suffix(f.path) in SUFFIXES),
                    key=lambda f: f.path)  # fmt: skip
    if not chosen:
        raise InputError(f"no event files (.csv, .parquet, .jsonl) at {pattern}")
    return chosen


def input_files(spark: SparkSession, patterns: Sequence[str]) -> list[InputFile]:
    """Every event file, in the polars engine's order (`offline.event_files.expand_paths`)."""
    files: list[InputFile] = []
    for pattern in patterns:
        if _has_scheme(pattern) and not pattern.startswith("file:"):
            files.extend(_remote_files(spark, pattern))
        else:
            local = pattern.removeprefix("file://").removeprefix("file:")
            for path in expand_paths([local]):
                resolved = path.resolve()
                files.append(InputFile(f"file://{resolved}", resolved.as_uri()))
    return files


def _as_string(frame: DataFrame, name: str) -> Column:
    if name not in frame.columns:
        return F.lit(None).cast("string")
    return F.col(name).cast("string")


def _timestamps(frame: DataFrame) -> tuple[Column, Column]:
    dtype = frame.schema["occurred_at"].dataType if "occurred_at" in frame.columns else None
    if isinstance(dtype, T.TimestampType):
        parsed = F.col("occurred_at")
        return parsed, F.when(parsed.isNull(), F.lit(RULES["occurred_at_missing"]))
    if isinstance(dtype, T.TimestampNTZType):
        return F.lit(None).cast("timestamp"), F.lit(RULES["occurred_at_naive"])
    text = _as_string(frame, "occurred_at")
    stripped = F.trim(text)
    normalised = F.regexp_replace(
        F.regexp_replace(stripped, r"^(\d{4}-\d{2}-\d{2})[ tT_]", "$1T"), r"[zZ]$", "+00:00"
    )
    parsed = F.when(normalised.rlike(_ISO), normalised.cast("timestamp"))
    reason = (
        F.when(text.isNull(), F.lit(RULES["occurred_at_missing"]))
        .when(~stripped.rlike(TZ_SUFFIX), F.lit(RULES["occurred_at_naive"]))
        .when(parsed.isNull(), F.lit(RULES["occurred_at_not_iso"]))
    )
    return parsed, reason


def checked(frame: DataFrame) -> DataFrame:
    """Raw rows as canonical columns plus ``reason`` (null when valid) and ``raw``.

    The rules and messages of `offline.event_validation.checked`, in Spark.
    """
    event_id, customer_id = _as_string(frame, "event_id"), _as_string(frame, "customer_id")
    kind = _as_string(frame, "type")
    currency, channel = _as_string(frame, "currency"), _as_string(frame, "channel")
    if "amount" not in frame.columns:
        amount_text, amount = F.lit(None).cast("string"), F.lit(None).cast("double")
    elif isinstance(frame.schema["amount"].dataType, T.StringType):
        amount_text = F.col("amount")
        amount = F.trim(amount_text).cast("double")
    else:
        amount_text, amount = F.col("amount").cast("string"), F.col("amount").cast("double")
    occurred_at, ts_reason = _timestamps(frame)
    kinds = [t.value for t in EventType]
    monetary = kind.isin([t.value for t in MONETARY_TYPES])
    reason = (
        F.when(event_id.isNull() | (F.length(event_id) == 0), F.lit(RULES["event_id_missing"]))
        .when(F.length(event_id) > ID_MAX_LENGTH, F.lit(RULES["event_id_too_long"]))
        .when(
            customer_id.isNull() | (F.length(customer_id) == 0),
            F.lit(RULES["customer_id_missing"]),
        )
        .when(F.length(customer_id) > ID_MAX_LENGTH, F.lit(RULES["customer_id_too_long"]))
        .when(kind.isNull() | ~kind.isin(kinds), F.lit(RULES["type_unknown"]))
        .otherwise(ts_reason)
    )
    not_positive = amount.isNull() | F.isnan(amount) | (F.abs(amount) == float("inf"))
    reason = (
        F.when(reason.isNotNull(), reason)
        .when(monetary & amount_text.isNull(), F.lit(RULES["amount_required"]))
        .when(monetary & (not_positive | (amount <= 0)), F.lit(RULES["amount_not_positive"]))
        .when((kind == "session") & amount_text.isNotNull(), F.lit(RULES["session_with_amount"]))
        .when(
            currency.isNotNull() & ~currency.rlike(CURRENCY_PATTERN),
            F.lit(RULES["currency_not_code"]),
        )
        .when(
            channel.isNotNull() & (F.length(channel) > CHANNEL_MAX_LENGTH),
            F.lit(RULES["channel_too_long"]),
        )
    )
    data_columns = [c for c in frame.columns if not c.startswith("_")]
    text = F.substring(
        F.concat_ws(",", *[F.coalesce(F.col(c).cast("string"), F.lit("")) for c in data_columns]),
        1,
        80,
    )
    if "_corrupt" in frame.columns:  # JSON Lines: a line that is not a JSON object
        corrupt = F.col("_corrupt").isNotNull()
        reason = F.when(corrupt, F.lit("line is not a JSON object")).otherwise(reason)
        text = F.when(corrupt, F.substring(F.trim(F.col("_corrupt")), 1, 80)).otherwise(text)
    return frame.select(
        event_id.alias("event_id"),
        customer_id.alias("customer_id"),
        kind.alias("type"),
        occurred_at.alias("occurred_at"),
        F.when(kind == "session", F.lit(None).cast("double")).otherwise(amount).alias("amount"),
        channel.alias("channel"),
        reason.alias("reason"),
        F.when(reason.isNotNull(), text).alias("raw"),
        *[F.col(c) for c in ORDER],
    )


def _read(spark: SparkSession, kind: str, files: list[str]) -> DataFrame:
    """One format's files, every contract column as text (Parquet keeps its types)."""
    strings = T.StructType([T.StructField(c, T.StringType()) for c in RAW_SCHEMA])
    if kind == "csv":
        return spark.read.options(header=True, inferSchema=False, mode="PERMISSIVE").csv(files)
    if kind == "parquet":
        return spark.read.parquet(*files)
    with_corrupt = T.StructType([*strings.fields, T.StructField("_corrupt", T.StringType())])
    return spark.read.options(mode="PERMISSIVE", columnNameOfCorruptRecord="_corrupt").json(
        files, schema=with_corrupt
    )


def read_events(spark: SparkSession, files: list[InputFile]) -> DataFrame:
    """Every row of every file, checked, with its input-order columns (`ORDER`)."""
    index = spark.createDataFrame(
        [(f.uri, i) for i, f in enumerate(files)], "_path string, _file int"
    ).hint("broadcast")
    parts = []
    for kind in sorted({f.kind for f in files}):
        group = [f.path for f in files if f.kind == kind]
        raw = _read(spark, kind, group)
        missing = [c for c in REQUIRED if c not in raw.columns]
        if missing:
            raise InputError(f"{group[0]}: missing column(s) {', '.join(missing)}")
        located = raw.select(
            "*",
            # Spark reports local files as file:/a/b; the index has file:///a/b.
            F.regexp_replace(F.col("_metadata.file_path"), "^file:/+", "file:///").alias("_path"),
            F.col("_metadata.file_block_start").alias("_block"),
            F.monotonically_increasing_id().alias("_row"),
        ).join(index, on="_path", how="left")
        parts.append(checked(located.drop("_path")))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _amount_micros() -> Column:
    cents = F.floor(F.col("amount") * MICROS_PER_UNIT + 0.5).cast("long")
    return F.when(F.col("type") == "refund", -cents).otherwise(cents)


def _rfm(at: datetime, start: datetime, suffix: str) -> list[Column]:
    upto = F.col("occurred_at") <= F.lit(at)
    in_window = upto & (F.col("occurred_at") >= F.lit(start))
    purchase = F.col("type") == "purchase"
    count = F.when(purchase & in_window, 1).otherwise(0)
    return [
        F.max(F.when(purchase & upto, F.col("occurred_at"))).alias(f"last_purchase{suffix}"),
        F.sum(count).cast("long").alias(f"frequency{suffix}"),
        F.sum(F.when(in_window, _amount_micros()).otherwise(0))
        .cast("long")
        .alias(f"net_micros{suffix}"),
    ]


def first_occurrences(valid: DataFrame) -> DataFrame:
    """Non-session events, each (customer, event id) at its earliest `ORDER`."""
    first = F.min(F.struct(*[F.col(c) for c in ORDER], "type", "occurred_at", "amount", "channel"))
    return (
        valid.where(F.col("type") != "session")
        .groupBy("customer_id", "event_id")
        .agg(first.alias("e"))
        .select("customer_id", "event_id", "e.type", "e.occurred_at", "e.amount", "e.channel")
    )


def customer_rows(events: DataFrame, horizon: Horizon) -> DataFrame:
    """The `offline.customer_table` rows, computed by Spark."""
    upto = F.col("occurred_at") <= F.lit(horizon.as_of)
    aggregates = _rfm(horizon.as_of, horizon.window_start(horizon.as_of), "")
    if horizon.then is not None:
        after = (F.col("occurred_at") > F.lit(horizon.then)) & upto
        aggregates += _rfm(horizon.then, horizon.window_start(horizon.then), THEN)
        aggregates += [
            F.max(after & (F.col("type") == "purchase")).alias("bought_after"),
            F.sum(F.when(after, _amount_micros()).otherwise(0))
            .cast("long")
            .alias("spend_after_micros"),
        ]
    aggregates += [
        F.sum(F.when((F.col("type") == "purchase") & upto, 1).otherwise(0)).cast("long")
        .alias("purchases"),
        F.sum(F.when((F.col("type") == "refund") & upto, 1).otherwise(0)).cast("long")
        .alias("refunds"),
    ]  # fmt: skip
    aggregates += _lifetime(horizon)
    day = F.floor(F.unix_micros(F.col("occurred_at")) / F.lit(MICROS_PER_DAY)).cast("long")
    first = F.min(F.when((F.col("type") == "purchase") & upto, day)).over(
        Window.partitionBy("customer_id")
    )
    with_days = events.withColumn("_day", day).withColumn("_first_day", first)
    return with_days.groupBy("customer_id").agg(*aggregates)


def _lifetime(horizon: Horizon) -> list[Column]:
    """The whole-history purchase summary (`offline.customer_table._lifetime`)."""
    purchase = F.col("type") == "purchase"

    def summary(at: datetime, suffix: str) -> list[Column]:
        bought = purchase & (F.col("occurred_at") <= F.lit(at))
        return [
            F.countDistinct(F.when(bought, F.col("_day")))
            .cast("long")
            .alias(f"purchase_days{suffix}"),
            F.sum(F.when(bought, _amount_micros()).otherwise(0)).cast("long")
            .alias(f"purchase_micros{suffix}"),
        ]  # fmt: skip

    bought = purchase & (F.col("occurred_at") <= F.lit(horizon.as_of))
    on_first = bought & (F.col("_day") == F.col("_first_day"))
    columns = [
        F.min(F.when(bought, F.col("_day"))).alias("first_purchase_day"),
        *summary(horizon.as_of, ""),
        F.sum(F.when(on_first, _amount_micros()).otherwise(0))
        .cast("long")
        .alias("first_day_micros"),
    ]
    if horizon.then is not None:
        columns += summary(horizon.then, THEN)
    return columns


def _to_polars(frame: DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    table = pl.from_arrow(frame.toArrow())
    assert isinstance(table, pl.DataFrame)  # noqa: S101 - a table, not a series
    columns = [
        table[name].cast(dtype).alias(name)
        if name in table.columns
        else pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in schema.items()
    ]
    return table.select(columns) if table.height else pl.DataFrame(schema=schema)


@dataclass
class SparkHistory:
    """An `offline.history.EventHistory` whose questions Spark answers."""

    spark: SparkSession
    events: DataFrame
    rejections: Rejections
    sources: list[str]
    _span: Span

    def span(self) -> Span:
        """Time span and size of the valid events."""
        return self._span

    def _valid(self) -> DataFrame:
        return self.events.where(F.col("reason").isNull())

    def customers(self, horizon: Horizon) -> CustomerTable:
        """The per-customer table, computed by Spark, collected as Arrow."""
        events = first_occurrences(self._valid())
        rows = _to_polars(customer_rows(events, horizon), TABLE_SCHEMA).sort("customer_id")
        bought = (
            (F.col("type") == "purchase")
            & (F.col("occurred_at") <= F.lit(horizon.as_of))
            & F.col("channel").isNotNull()
        )
        channels = (
            events.where(bought)
            .groupBy("customer_id", "channel")
            .agg(F.count(F.lit(1)).alias("purchases"))
        )
        return CustomerTable(rows, _to_polars(channels, CHANNELS_SCHEMA))

    def events_of(self, customer_ids: pl.Series) -> pl.DataFrame:
        """These customers' valid events, in input order."""
        wanted = self.spark.createDataFrame(
            [(c,) for c in customer_ids.unique().to_list()], "customer_id string"
        ).hint("broadcast")
        rows = self._valid().join(wanted, on="customer_id", how="left_semi")
        ordered = rows.orderBy(*ORDER).select(*EVENT_SCHEMA)
        return _to_polars(ordered, dict(EVENT_SCHEMA))


def _summarise(events: DataFrame) -> tuple[Rejections, Span]:
    order = F.struct(*[F.col(c) for c in ORDER])
    by_reason = (
        events.groupBy("reason")
        .agg(
            F.count(F.lit(1)).alias("count"),
            F.unix_micros(F.min("occurred_at")).alias("earliest"),
            F.unix_micros(F.max("occurred_at")).alias("latest"),
            F.min(order).alias("first"),
        )
        .collect()
    )
    rank = F.row_number().over(Window.partitionBy("reason").orderBy(*ORDER))
    examples: dict[str, list[str]] = {}
    for row in (
        events.where(F.col("reason").isNotNull())
        .select("reason", "raw", rank.alias("rank"), *ORDER)
        .where(F.col("rank") <= EXAMPLES)
        .orderBy("reason", "rank")
        .collect()
    ):
        examples.setdefault(str(row["reason"]), []).append(str(row["raw"]))
    rejections = Rejections()
    span = Span(EPOCH, EPOCH, 0)
    # Reasons in the order their first row appears, as the polars engine lists them.
    for row in sorted(by_reason, key=lambda r: tuple(r["first"])):
        rejections.total_rows += int(row["count"])
        if row["reason"] is None:
            span = Span(_utc(row["earliest"]), _utc(row["latest"]), int(row["count"]))
        else:
            reason = str(row["reason"])
            rejections.add(reason, int(row["count"]), examples.get(reason, []))
    return rejections, span


def _utc(micros: int) -> datetime:
    # Epoch microseconds, not Python datetimes: PySpark would convert those to local time.
    return EPOCH + timedelta(microseconds=micros)


@contextlib.contextmanager
def open_spark_history(
    patterns: Sequence[str], max_reject_share: float = 0.01, master: str | None = None
) -> Iterator[SparkHistory]:
    """Read and validate event files with Spark.

    Uses the active session if there is one (a notebook's, a test's) and leaves
    it running; a session made here stops on exit.
    """
    active = SparkSession.getActiveSession()
    spark = active or session(master)
    try:
        files = input_files(spark, patterns)
        if not files:
            raise InputError("no event files given")
        events = read_events(spark, files)
        rejections, span = _summarise(events)
        check_rejections(rejections, span.events, max_reject_share)
        yield SparkHistory(spark, events, rejections, [f.path for f in files], span)
    finally:
        if active is None:
            spark.stop()
