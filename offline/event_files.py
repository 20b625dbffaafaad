"""Event files: which files an argument names, and their raw columns.

Discovery (files, directories, globs) and reading (CSV, Parquet, JSON Lines)
only; what a valid event is lives in `offline.event_validation`.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from offline.errors import InputError

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
RAW_SCHEMA = dict.fromkeys((*REQUIRED, *OPTIONAL), pl.String)
"""Every contract column, as text: how records without a schema of their own are read."""


def raw_row(value: dict[str, object]) -> dict[str, str | None]:
    """A decoded JSON object as a raw row: every contract column as text or None."""
    return {k: (None if value.get(k) is None else str(value[k])) for k in RAW_SCHEMA}


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


def read_jsonl_lines(path: Path) -> tuple[pl.DataFrame, list[str]]:
    """Line by line, so that one malformed line is a rejection, not a failed file."""
    rows: list[dict[str, str | None]] = []
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
            rows.append(raw_row(value))
    return pl.DataFrame(rows, schema=RAW_SCHEMA), bad


def unreadable(path: Path, exc: BaseException) -> InputError:
    """The one-line error for a file that could not be read."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return InputError(f"{path}: unreadable {SUFFIXES[path.suffix.lower()]} file: {first}")


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
                return read_jsonl_lines(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise unreadable(path, exc) from exc
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing and frame.height > 0:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame, []
