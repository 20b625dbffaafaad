"""Read event files (CSV, Parquet, JSON Lines) into one validated frame.

Validation applies the `schemas.CustomerEvent` rules column-wise (a per-row
pydantic call would dominate the run time on tens of millions of rows); a unit
test checks both agree. Rejected rows are counted by reason with the first
examples, never dropped silently.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
REQUIRED = ("event_id", "customer_id", "type", "occurred_at")
OPTIONAL = ("amount", "currency", "channel")
EVENT_TYPE = pl.Enum(["purchase", "refund", "session"])
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "customer_id": pl.String(),
    "type": EVENT_TYPE,
    "occurred_at": pl.Datetime("us", "UTC"),
    "amount": pl.Float64(),
}
_TZ_SUFFIX = r"([zZ]|[+-]\d{2}(:?\d{2})?)$"
_EXAMPLES = 3


class InputError(ValueError):
    """Unusable input: reported as one line, exit code 2."""


@dataclass
class Rejections:
    """Rows that failed validation, by reason, with the first examples of each."""

    total_rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        """How many rows were rejected."""
        return sum(self.counts.values())

    @property
    def share(self) -> float:
        """Rejected rows as a share of all rows read."""
        return self.rejected / self.total_rows if self.total_rows else 0.0

    def add(self, reason: str, count: int, examples: Sequence[str]) -> None:
        """Record `count` rows rejected for `reason`."""
        self.counts[reason] = self.counts.get(reason, 0) + count
        kept = self.examples.setdefault(reason, [])
        kept.extend(examples[: _EXAMPLES - len(kept)])

    def summary(self) -> str:
        """One line per reason, most frequent first."""
        lines = [f"{self.rejected} of {self.total_rows} rows rejected ({self.share:.2%})"]
        for reason, count in sorted(self.counts.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {count:>8}  {reason}  e.g. {'; '.join(self.examples[reason])}")
        return "\n".join(lines)


@dataclass
class EventLog:
    """Validated events in the canonical schema, plus what was rejected."""

    frame: pl.DataFrame
    rejections: Rejections
    sources: list[str]


def expand_paths(patterns: Sequence[str]) -> list[Path]:
    """Files named directly, inside directories, or matched by globs."""
    files: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES)
            if not found:
                raise InputError(f"no event files (.csv, .parquet, .jsonl) in directory {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif any(ch in pattern for ch in "*?["):
            # Path.glob cannot take an absolute pattern; glob.glob can.
            matched = sorted(Path(p) for p in glob.glob(pattern, recursive=True))  # noqa: PTH207
            if not matched:
                raise InputError(f"no files match {pattern}")
            files.extend(p for p in matched if p.is_file())
        else:
            raise InputError(f"no such file or directory: {pattern}")
    for file in files:
        if file.suffix.lower() not in SUFFIXES:
            raise InputError(f"{file}: unsupported file type (use .csv, .parquet or .jsonl)")
    return files


def _read_jsonl_slow(path: Path) -> tuple[pl.DataFrame, list[str]]:
    """Line by line, so that one malformed line is a rejection, not a failed file."""
    rows: list[dict[str, object]] = []
    bad: list[str] = []
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                bad.append(line.strip()[:80])
                continue
            if not isinstance(value, dict):
                bad.append(line.strip()[:80])
                continue
            rows.append(
                {
                    k: (None if value.get(k) is None else str(value[k]))
                    for k in (*REQUIRED, *OPTIONAL)
                }
            )
    schema = dict.fromkeys((*REQUIRED, *OPTIONAL), pl.String)
    return pl.DataFrame(rows, schema=schema), bad


def read_raw(path: Path) -> tuple[pl.DataFrame, list[str]]:
    """One file as a frame of raw columns, plus lines that were not even JSON."""
    kind = SUFFIXES[path.suffix.lower()]
    try:
        if kind == "csv":
            frame = pl.read_csv(path, infer_schema=False)
        elif kind == "parquet":
            frame = pl.read_parquet(path)
        else:
            try:
                frame = pl.read_ndjson(path, infer_schema_length=None)
            except (pl.exceptions.PolarsError, ValueError):
                return _read_jsonl_slow(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: unreadable {kind} file: {first}") from exc
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing and frame.height > 0:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame, []


def _as_string(frame: pl.DataFrame, name: str) -> pl.Expr:
    if name not in frame.columns:
        return pl.lit(None, dtype=pl.String).alias(name)
    if frame.schema[name] == pl.String:
        return pl.col(name)
    return pl.col(name).cast(pl.String, strict=False).alias(name)


def _timestamps(frame: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    """(parsed UTC timestamp, reason or null) for the occurred_at column."""
    dtype = frame.schema.get("occurred_at")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return (
                pl.lit(None, dtype=pl.Datetime("us", "UTC")),
                pl.lit("occurred_at has no timezone"),
            )
        parsed = pl.col("occurred_at").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        return parsed, pl.when(parsed.is_null()).then(pl.lit("occurred_at is missing"))
    text = _as_string(frame, "occurred_at")
    normalised = text.str.strip_chars().str.replace(r"^(\d{4}-\d{2}-\d{2})[ tT_]", "${1}T")
    normalised = normalised.str.replace(r"[zZ]$", "+00:00")
    parsed = normalised.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%z", time_zone="UTC", strict=False
    ).dt.cast_time_unit("us")
    reason = (
        pl.when(text.is_null())
        .then(pl.lit("occurred_at is missing"))
        .when(~text.str.strip_chars().str.contains(_TZ_SUFFIX))
        .then(pl.lit("occurred_at has no timezone"))
        .when(parsed.is_null())
        .then(pl.lit("occurred_at is not an ISO-8601 timestamp"))
    )
    return parsed, reason


def validate(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a raw frame into (valid canonical rows, rejected rows with a ``reason``)."""
    event_id, customer_id = _as_string(frame, "event_id"), _as_string(frame, "customer_id")
    kind = _as_string(frame, "type")
    currency, channel = _as_string(frame, "currency"), _as_string(frame, "channel")
    if "amount" not in frame.columns:
        amount = pl.lit(None, dtype=pl.Float64)
        amount_text = pl.lit(None, dtype=pl.String)
    elif frame.schema["amount"] == pl.String:
        amount_text = pl.col("amount")
        amount = amount_text.str.strip_chars().cast(pl.Float64, strict=False)
    else:
        amount_text = pl.col("amount").cast(pl.String)
        amount = pl.col("amount").cast(pl.Float64, strict=False)
    occurred_at, ts_reason = _timestamps(frame)
    monetary = kind.is_in(["purchase", "refund"])
    reason = (
        pl.when(event_id.is_null() | (event_id.str.len_chars() == 0))
        .then(pl.lit("event_id is missing or empty"))
        .when(event_id.str.len_chars() > 128)
        .then(pl.lit("event_id longer than 128 characters"))
        .when(customer_id.is_null() | (customer_id.str.len_chars() == 0))
        .then(pl.lit("customer_id is missing or empty"))
        .when(customer_id.str.len_chars() > 128)
        .then(pl.lit("customer_id longer than 128 characters"))
        .when(kind.is_null() | ~kind.is_in(["purchase", "refund", "session"]))
        .then(pl.lit("type is not purchase, refund or session"))
        .otherwise(ts_reason)
    )
    reason = (
        pl.when(reason.is_not_null())
        .then(reason)
        .when(monetary & amount_text.is_null())
        .then(pl.lit("amount is required"))
        .when(
            monetary & (amount.is_null() | amount.is_nan() | amount.is_infinite() | (amount <= 0))
        )
        .then(pl.lit("amount is not a positive finite number"))
        .when((kind == "session") & amount_text.is_not_null())
        .then(pl.lit("a session event carries no amount"))
        .when(currency.is_not_null() & ~currency.str.contains(r"^[A-Z]{3}$"))
        .then(pl.lit("currency is not a 3-letter code"))
        .when(channel.is_not_null() & (channel.str.len_chars() > 64))
        .then(pl.lit("channel longer than 64 characters"))
    )
    reasons = frame.select(reason.alias("reason")).to_series()
    ok = reasons.is_null()
    valid = frame.filter(ok).select(
        event_id.alias("event_id"),
        customer_id.alias("customer_id"),
        kind.cast(EVENT_TYPE).alias("type"),
        occurred_at.alias("occurred_at"),
        pl.when(kind == "session").then(None).otherwise(amount).alias("amount"),
    )
    # The raw text of a row is only built for rejected rows: it is for the report.
    rejected = frame.filter(~ok).select(
        pl.concat_str([pl.all().cast(pl.String, strict=False).fill_null("")], separator=",")
        .str.slice(0, 80)
        .alias("raw"),
    )
    return valid, rejected.with_columns(reasons.filter(~ok).alias("reason"))


def load_events(patterns: Sequence[str], max_reject_share: float = 0.01) -> EventLog:
    """Read, validate and concatenate event files.

    Raises `InputError` for unreadable files, empty input, or a share of
    rejected rows above `max_reject_share`.
    """
    files = expand_paths(patterns)
    if not files:
        raise InputError("no event files given")
    rejections = Rejections()
    frames: list[pl.DataFrame] = []
    for path in files:
        raw, unparsable = read_raw(path)
        rejections.total_rows += raw.height + len(unparsable)
        if unparsable:
            rejections.add("line is not a JSON object", len(unparsable), unparsable)
        if raw.height == 0:
            continue
        valid, rejected = validate(raw)
        frames.append(valid)
        for (reason,), group in rejected.group_by("reason", maintain_order=True):
            rejections.add(str(reason), group.height, group["raw"].head(_EXAMPLES).to_list())
    return _finish(frames, rejections, [str(f) for f in files], max_reject_share)


def events_from_records(
    records: Sequence[dict[str, object]],
    source: str,
    max_reject_share: float = 0.01,
    unparsable: Sequence[str] = (),
) -> EventLog:
    """Validate already-decoded records (for example from Kafka) the same way as files.

    `unparsable` holds (the start of) payloads that were not JSON objects.
    """
    rejections = Rejections(total_rows=len(records) + len(unparsable))
    if unparsable:
        rejections.add("payload is not a JSON object", len(unparsable), unparsable)
    frames = []
    if records:
        schema = dict.fromkeys((*REQUIRED, *OPTIONAL), pl.String)
        raw = pl.DataFrame(
            [{k: (None if r.get(k) is None else str(r[k])) for k in schema} for r in records],
            schema=schema,
        )
        valid, rejected = validate(raw)
        frames.append(valid)
        for (reason,), group in rejected.group_by("reason", maintain_order=True):
            rejections.add(str(reason), group.height, group["raw"].head(_EXAMPLES).to_list())
    return _finish(frames, rejections, [source], max_reject_share)


def _finish(
    frames: list[pl.DataFrame], rejections: Rejections, sources: list[str], max_reject_share: float
) -> EventLog:
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=EVENT_SCHEMA)
    if rejections.share > max_reject_share:
        first = max(rejections.counts, key=lambda r: rejections.counts[r])
        raise InputError(
            f"{rejections.rejected} of {rejections.total_rows} rows invalid "
            f"({rejections.share:.1%} > {max_reject_share:.1%} allowed); most common: {first}"
        )
    if frame.height == 0:
        raise InputError("the input holds no valid events")
    return EventLog(frame, rejections, sources)
