"""Event history from files: discovered, read, validated, concatenated.

The pieces live in `offline.event_files` (which files, raw columns) and
`offline.event_validation` (the contract's rules, column-wise); records from
Kafka come in through `offline.kafka_io`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from offline.customer_table import CustomerTable, Horizon, customer_table
from offline.errors import InputError
from offline.event_files import expand_paths, read_raw
from offline.event_validation import EVENT_SCHEMA, EXAMPLES, Rejections, validate
from offline.history import Span


@dataclass
class EventLog:
    """Validated events in the canonical schema, in memory, plus what was rejected.

    An `offline.history.EventHistory`; for histories larger than memory see
    `offline.partitioned_log`.
    """

    frame: pl.DataFrame
    rejections: Rejections
    sources: list[str]

    def span(self) -> Span:
        """Time span and size of the valid events."""
        earliest, latest = self.frame["occurred_at"].min(), self.frame["occurred_at"].max()
        assert isinstance(earliest, datetime)  # noqa: S101 - a non-empty datetime column
        assert isinstance(latest, datetime)  # noqa: S101
        return Span(earliest, latest, self.frame.height)

    def customers(self, horizon: Horizon) -> CustomerTable:
        """The per-customer table at `horizon`."""
        return customer_table([self.frame.lazy()], horizon)

    def events_of(self, customer_ids: pl.Series) -> pl.DataFrame:
        """The events of these customers, in input order."""
        return self.frame.filter(pl.col("customer_id").is_in(customer_ids.implode()))


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
        add_rejected(rejections, rejected)
    return finish(frames, rejections, [str(f) for f in files], max_reject_share)


def add_rejected(rejections: Rejections, rejected: pl.DataFrame) -> None:
    """Fold `validate`'s rejected rows into `rejections`, by reason."""
    for (reason,), group in rejected.group_by("reason", maintain_order=True):
        rejections.add(str(reason), group.height, group["raw"].head(EXAMPLES).to_list())


def finish(
    frames: list[pl.DataFrame], rejections: Rejections, sources: list[str], max_reject_share: float
) -> EventLog:
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=EVENT_SCHEMA)
    check_rejections(rejections, frame.height, max_reject_share)
    return EventLog(frame, rejections, sources)


def check_rejections(rejections: Rejections, valid: int, max_reject_share: float) -> None:
    """`InputError` for too many rejected rows or no valid event at all."""
    if rejections.share > max_reject_share:
        first = max(rejections.counts, key=lambda r: rejections.counts[r])
        raise InputError(
            f"{rejections.rejected} of {rejections.total_rows} rows invalid "
            f"({rejections.share:.1%} > {max_reject_share:.1%} allowed); most common: {first}"
        )
    if valid == 0:
        raise InputError("the input holds no valid events")
