"""Convert the CDNOW purchase log into `CustomerEvent` rows.

The log has day resolution and no event ids, so ids and times are made
deterministic: ``cdnow-<customer>-<YYYYMMDD>-<n>`` at 12:00 UTC, where n counts
a customer's rows on that day in file order. Rows of $0.00 are not purchases
(a purchase has a positive amount); they become ``session`` events so that the
visit is kept without inventing revenue.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from offline.errors import InputError

CDNOW_COLUMNS = ("customer_id", "date", "number_of_cds", "dollar_value")


def convert_cdnow(path: Path) -> pl.DataFrame:
    """The CDNOW CSV as a frame with the `CustomerEvent` columns."""
    try:
        raw = pl.read_csv(
            path,
            schema_overrides={
                "customer_id": pl.String,
                "date": pl.String,
                "dollar_value": pl.Float64,
            },
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: unreadable CDNOW file: {str(exc).splitlines()[0]}") from exc
    missing = [c for c in CDNOW_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(f"{path}: missing CDNOW column(s) {', '.join(missing)}")
    day = pl.col("date").str.strptime(pl.Date, "%Y%m%d", strict=False)
    frame = raw.with_row_index("row").with_columns(day.alias("day"))
    bad = frame.filter(pl.col("day").is_null() | pl.col("dollar_value").is_null())
    if bad.height:
        raise InputError(
            f"{path}: {bad.height} rows with an unreadable date or dollar_value, "
            f"first at data row {int(bad['row'][0]) + 1}"
        )
    positive = pl.col("dollar_value") > 0
    return frame.sort("row").select(
        pl.format(
            "cdnow-{}-{}-{}",
            "customer_id",
            pl.col("date"),
            pl.col("row").rank("ordinal").over("customer_id", "date") - 1,
        ).alias("event_id"),
        pl.col("customer_id"),
        pl.when(positive).then(pl.lit("purchase")).otherwise(pl.lit("session")).alias("type"),
        (pl.col("day").cast(pl.Datetime("us")) + pl.duration(hours=12))
        .dt.replace_time_zone("UTC")
        .alias("occurred_at"),
        pl.when(positive).then(pl.col("dollar_value")).otherwise(None).alias("amount"),
        pl.lit("USD").alias("currency"),
        pl.lit("cdnow").alias("channel"),
    )


def write_events(frame: pl.DataFrame, out: Path) -> None:
    """Write events as Parquet or JSON Lines (by suffix), timestamps in ISO-8601 with Z."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in {".parquet", ".pq"}:
        frame.write_parquet(out)
    elif out.suffix.lower() in {".jsonl", ".ndjson"}:
        frame.with_columns(
            pl.col("occurred_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        ).write_ndjson(out)
    else:
        raise InputError(f"{out}: output must end in .parquet or .jsonl")
