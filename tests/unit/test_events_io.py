"""Reading event files: formats, rejection accounting, and agreement with the contract."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from offline.errors import InputError
from offline.event_validation import validate
from offline.events_io import load_events
from schemas import CustomerEvent

GOOD: dict[str, Any] = {
    "event_id": "e1",
    "customer_id": "c1",
    "type": "purchase",
    "occurred_at": "2024-05-01T10:00:00+02:00",
    "amount": "12.5",
}
CASES: list[dict[str, Any]] = [
    GOOD,
    {**GOOD, "occurred_at": "2024-05-01T10:00:00Z"},
    {**GOOD, "occurred_at": "2024-05-01 10:00:00.25+00:00"},
    {**GOOD, "type": "session", "amount": None},
    {**GOOD, "type": "refund"},
    {**GOOD, "currency": "EUR", "channel": "app"},
    {**GOOD, "event_id": ""},
    {**GOOD, "event_id": None},
    {**GOOD, "event_id": "x" * 129},
    {**GOOD, "customer_id": "y" * 129},
    {**GOOD, "type": "click"},
    {**GOOD, "occurred_at": "2024-05-01T10:00:00"},
    {**GOOD, "occurred_at": "tomorrow"},
    {**GOOD, "occurred_at": None},
    {**GOOD, "amount": None},
    {**GOOD, "amount": "0"},
    {**GOOD, "amount": "-1"},
    {**GOOD, "amount": "NaN"},
    {**GOOD, "amount": "inf"},
    {**GOOD, "amount": "abc"},
    {**GOOD, "type": "session"},
    {**GOOD, "currency": "eur"},
    {**GOOD, "channel": "z" * 65},
]


def pydantic_accepts(row: dict[str, Any]) -> bool:
    data = {k: v for k, v in row.items() if v is not None}
    if "amount" in data:
        with contextlib.suppress(ValueError):
            data["amount"] = float(data["amount"])
    try:
        CustomerEvent.model_validate(data)
    except ValidationError:
        return False
    return True


def test_columnwise_validation_agrees_with_the_pydantic_contract() -> None:
    schema = dict.fromkeys(
        ("event_id", "customer_id", "type", "occurred_at", "amount", "currency", "channel"),
        pl.String,
    )
    raw = pl.DataFrame([{k: row.get(k) for k in schema} for row in CASES], schema=schema)
    valid, rejected = validate(raw)
    assert valid.height + rejected.height == len(CASES)
    accepted_ids = []
    for i, row in enumerate(CASES):
        if pydantic_accepts(row):
            accepted_ids.append(i)
    assert valid.height == len(accepted_ids), rejected
    assert set(rejected["reason"]) >= {
        "occurred_at has no timezone",
        "amount is required",
        "a session event carries no amount",
    }


def write_all_formats(tmp_path: Path, rows: list[dict[str, Any]]) -> list[Path]:
    frame = pl.DataFrame(rows)
    csv, jsonl, parquet = tmp_path / "a.csv", tmp_path / "b.jsonl", tmp_path / "c.parquet"
    frame.write_csv(csv)
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    frame.with_columns(
        pl.col("occurred_at").str.to_datetime(time_zone="UTC"),
        pl.col("amount").cast(pl.Float64),
    ).write_parquet(parquet)
    return [csv, jsonl, parquet]


def test_reads_csv_jsonl_and_parquet_alike(tmp_path: Path) -> None:
    rows = [
        {**GOOD, "event_id": f"e{i}", "occurred_at": f"2024-05-0{i + 1}T10:00:00Z"}
        for i in range(3)
    ]
    for path in write_all_formats(tmp_path, rows):
        log = load_events([str(path)])
        assert log.frame.height == 3
        assert log.frame["occurred_at"][0] == datetime(2024, 5, 1, 10, tzinfo=UTC)
        assert log.frame["amount"].to_list() == [12.5, 12.5, 12.5]
    assert load_events([str(tmp_path)]).frame.height == 9
    assert load_events([str(tmp_path / "*.csv")]).frame.height == 3


def test_malformed_jsonl_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = [json.dumps({**GOOD, "event_id": f"e{i}"}) for i in range(300)]
    path.write_text("\n".join([*good, "{not json", "[1, 2]"]) + "\n")
    log = load_events([str(path)])
    assert log.frame.height == 300
    assert log.rejections.counts == {"line is not a JSON object": 2}
    assert log.rejections.total_rows == 302


def test_rejections_above_the_threshold_stop_the_run(tmp_path: Path) -> None:
    rows = [{**GOOD, "event_id": f"e{i}"} for i in range(95)]
    rows += [
        {**GOOD, "event_id": f"bad{i}", "occurred_at": "2024-05-01T10:00:00"} for i in range(5)
    ]
    path = tmp_path / "e.csv"
    pl.DataFrame(rows).write_csv(path)
    with pytest.raises(InputError, match=r"5 of 100 rows invalid \(5.0% > 1.0% allowed\)"):
        load_events([str(path)])
    log = load_events([str(path)], max_reject_share=0.10)
    assert log.rejections.counts == {"occurred_at has no timezone": 5}
    assert len(log.rejections.examples["occurred_at has no timezone"]) == 3
    assert "occurred_at has no timezone" in log.rejections.summary()


def test_naive_parquet_timestamps_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "naive.parquet"
    pl.DataFrame(
        {**{k: [v] for k, v in GOOD.items()}, "occurred_at": [datetime(2024, 5, 1)]}
    ).write_parquet(path)
    with pytest.raises(InputError, match="invalid"):
        load_events([str(path)])


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "missing.csv", "no such file or directory"),
        ("", "empty.csv", "unreadable csv file: empty CSV"),
        ("event_id,customer_id,type,occurred_at,amount\n", "header.csv", "no valid events"),
        ("event_id,customer_id\ne1,c1\n", "cols.csv", "missing column(s) type, occurred_at"),
        ("\x00\x01garbage", "bad.parquet", "unreadable parquet file"),
        ("x", "notes.txt", "unsupported file type"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, content: str | None, name: str, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_events([str(path)])


def test_empty_glob_and_directory_are_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no files match"):
        load_events([str(tmp_path / "*.parquet")])
    with pytest.raises(InputError, match="no event files"):
        load_events([str(tmp_path)])
