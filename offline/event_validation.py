"""Column-wise validation of raw event rows against the `CustomerEvent` contract.

The same rules as the contract, over whole frames at once: each rejected row
gets the message of the first rule it breaks, from `schemas.events.RULES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from schemas._base import ID_MAX_LENGTH
from schemas.events import (
    CHANNEL_MAX_LENGTH,
    CURRENCY_PATTERN,
    MONETARY_TYPES,
    RULES,
    EventType,
)

EVENT_TYPE = pl.Enum([t.value for t in EventType])
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "customer_id": pl.String(),
    "type": EVENT_TYPE,
    "occurred_at": pl.Datetime("us", "UTC"),
    "amount": pl.Float64(),
    "channel": pl.String(),
}
"""The canonical columns of a validated event frame."""
TZ_SUFFIX = r"([zZ]|[+-]\d{2}(:?\d{2})?)$"
"""How a timestamp with a zone ends (Z or an offset); shared with the Spark engine."""
EXAMPLES = 3


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
        kept.extend(examples[: EXAMPLES - len(kept)])

    def summary(self) -> str:
        """One line per reason, most frequent first."""
        lines = [f"{self.rejected} of {self.total_rows} rows rejected ({self.share:.2%})"]
        for reason, count in sorted(self.counts.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {count:>8}  {reason}  e.g. {'; '.join(self.examples[reason])}")
        return "\n".join(lines)


def _as_string(schema: pl.Schema, name: str) -> pl.Expr:
    if name not in schema:
        return pl.lit(None, dtype=pl.String).alias(name)
    if schema[name] == pl.String:
        return pl.col(name)
    return pl.col(name).cast(pl.String, strict=False).alias(name)


AT, AMOUNT, FIRST_REASON = "_at", "_amount", "_first_reason"
"""Working columns of `checked`: the parsed timestamp and amount, the first rules' reason."""
CANONICAL, OTHER_AT = "_canonical_at", "_other_at"
"""Working columns: a text timestamp parsed in the canonical form (null when it is not),
and stripped when it is not (null when it is)."""
CANONICAL_AT = "%Y-%m-%dT%H:%M:%S%.fZ"
"""The form the contract writes (pydantic's, ``2024-03-28T18:32:11.513500Z``)."""


def _timestamps(schema: pl.Schema) -> tuple[list[pl.Expr], pl.Expr, pl.Expr, list[pl.Expr]]:
    """(working columns first, parsed UTC timestamp, reason or null, working columns beside
    it) for the occurred_at column; the reason reads the parsed timestamp from the `AT`
    column and the working columns. (A strict parse is a column of its own: polars'
    common subexpressions would parse twice, once for its nulls.)"""
    dtype = schema.get("occurred_at")
    at = pl.col(AT)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return (
                [],
                pl.lit(None, dtype=pl.Datetime("us", "UTC")),
                pl.lit(RULES["occurred_at_naive"]),
                [],
            )
        parsed = pl.col("occurred_at").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        return [], parsed, pl.when(at.is_null()).then(pl.lit(RULES["occurred_at_missing"])), []
    text = _as_string(schema, "occurred_at")
    # The canonical form in one strict parse; only the other texts are stripped, their
    # separator and zone normalised and parsed leniently (string functions skip the
    # nulls): half the time of normalising every text, for the same instants.
    canonical = text.str.to_datetime(CANONICAL_AT, time_zone="UTC", strict=False, cache=False)
    other = pl.when(pl.col(CANONICAL).is_null()).then(text).str.strip_chars()
    normalised = other.str.replace(r"^(\d{4}-\d{2}-\d{2})[ tT_]", "${1}T")
    normalised = normalised.str.replace(r"[zZ]$", "+00:00")
    lenient = normalised.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", time_zone="UTC", strict=False)
    parsed = pl.coalesce(pl.col(CANONICAL), lenient).dt.cast_time_unit("us")
    reason = (
        pl.when(text.is_null())
        .then(pl.lit(RULES["occurred_at_missing"]))
        .when(~pl.col(OTHER_AT).str.contains(TZ_SUFFIX))
        .then(pl.lit(RULES["occurred_at_naive"]))
        .when(at.is_null())
        .then(pl.lit(RULES["occurred_at_not_iso"]))
    )
    return [canonical.alias(CANONICAL)], parsed, reason, [other.alias(OTHER_AT)]


def checked(raw: pl.LazyFrame) -> pl.LazyFrame:
    """Raw rows as the canonical `EVENT_SCHEMA` columns plus ``reason`` and ``raw``.

    ``reason`` is null for a valid row and the first broken rule's message
    otherwise; ``raw`` (the row's text, for the report) is only built for
    rejected rows. Lazy: the input can be a scan of any size. The timestamp and
    the amount are parsed once, in a first step, and the rules read them from
    there (as expressions, each text column was parsed twice or three times:
    a fifth of the time of the whole check).
    """
    schema = raw.collect_schema()
    event_id, customer_id = _as_string(schema, "event_id"), _as_string(schema, "customer_id")
    kind = _as_string(schema, "type")
    currency, channel = _as_string(schema, "currency"), _as_string(schema, "channel")
    if "amount" not in schema:
        amount = pl.lit(None, dtype=pl.Float64)
        amount_text = pl.lit(None, dtype=pl.String)
    elif schema["amount"] == pl.String:
        amount_text = pl.col("amount")
        amount = amount_text.str.strip_chars().cast(pl.Float64, strict=False)
    else:
        amount_text = pl.col("amount").cast(pl.String, strict=False)
        amount = pl.col("amount").cast(pl.Float64, strict=False)
    ts_first, occurred_at, ts_reason, ts_columns = _timestamps(schema)
    monetary = kind.is_in([t.value for t in MONETARY_TYPES])
    first = (
        pl.when(event_id.is_null() | (event_id.str.len_chars() == 0))
        .then(pl.lit(RULES["event_id_missing"]))
        .when(event_id.str.len_chars() > ID_MAX_LENGTH)
        .then(pl.lit(RULES["event_id_too_long"]))
        .when(customer_id.is_null() | (customer_id.str.len_chars() == 0))
        .then(pl.lit(RULES["customer_id_missing"]))
        .when(customer_id.str.len_chars() > ID_MAX_LENGTH)
        .then(pl.lit(RULES["customer_id_too_long"]))
        .when(kind.is_null() | ~kind.is_in([t.value for t in EventType]))
        .then(pl.lit(RULES["type_unknown"]))
        .otherwise(ts_reason)
    )
    parsed = pl.col(AMOUNT)
    reason = (
        pl.when(pl.col(FIRST_REASON).is_not_null())
        .then(pl.col(FIRST_REASON))
        .when(monetary & amount_text.is_null())
        .then(pl.lit(RULES["amount_required"]))
        .when(
            monetary & (parsed.is_null() | parsed.is_nan() | parsed.is_infinite() | (parsed <= 0))
        )
        .then(pl.lit(RULES["amount_not_positive"]))
        .when((kind == "session") & amount_text.is_not_null())
        .then(pl.lit(RULES["session_with_amount"]))
        .when(currency.is_not_null() & ~currency.str.contains(CURRENCY_PATTERN))
        .then(pl.lit(RULES["currency_not_code"]))
        .when(channel.is_not_null() & (channel.str.len_chars() > CHANNEL_MAX_LENGTH))
        .then(pl.lit(RULES["channel_too_long"]))
    )
    text = pl.concat_str(
        [pl.col(c).cast(pl.String, strict=False).fill_null("") for c in schema], separator=","
    ).str.slice(0, 80)
    return (
        raw.with_columns(*ts_first)
        .with_columns(occurred_at.alias(AT), amount.alias(AMOUNT), *ts_columns)
        .with_columns(first.alias(FIRST_REASON))
        .with_columns(reason.alias("_reason"))
        .select(
            event_id.alias("event_id"),
            customer_id.alias("customer_id"),
            pl.when(pl.col("_reason").is_null()).then(kind).cast(EVENT_TYPE).alias("type"),
            pl.col(AT).alias("occurred_at"),
            pl.when(kind == "session").then(None).otherwise(parsed).alias("amount"),
            channel.alias("channel"),
            pl.col("_reason").alias("reason"),
            # The raw text of a row is only built for rejected rows: it is for the report.
            pl.when(pl.col("_reason").is_not_null()).then(text).alias("raw"),
        )
    )


def validate(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a raw frame into (valid canonical rows, rejected rows with ``raw`` and ``reason``)."""
    rows = checked(frame.lazy()).collect()
    ok = rows["reason"].is_null()
    return (
        rows.filter(ok).select(list(EVENT_SCHEMA)),
        rows.filter(~ok).select("raw", "reason"),
    )
