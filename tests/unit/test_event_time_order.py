"""Events merged out of core in event time come in exactly the in-memory stable sort's order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from offline.event_time_order import time_ordered
from offline.events_io import load_events
from offline.partitioned_log import partition_events
from scoring.customer_record import from_epoch_micros

FIELDS = ["event_id", "customer_id", "type", "occurred_at", "amount"]


def _write_inputs(folder: Path) -> list[str]:
    """Two files whose events share few instants (many ties within and across files), with
    redelivered copies and a row the contract rejects."""
    rng = np.random.default_rng(4)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    paths = []
    for index in range(2):
        lines = []
        for n in range(3000):
            at = start + timedelta(hours=int(rng.integers(0, 40)))
            kind = ["purchase", "refund", "session"][int(rng.integers(0, 3))]
            body = {
                "event_id": f"e{index}-{n % 2500}",  # the last 500 repeat earlier ids
                "customer_id": f"c{int(rng.integers(0, 300))}",
                "type": kind,
                "occurred_at": at.isoformat(),
                "amount": None if kind == "session" else round(float(rng.uniform(1, 90)), 2),
            }
            lines.append(json.dumps(body))
        lines.append(json.dumps({"event_id": "bad", "customer_id": "c1", "type": "purchase",
                                 "occurred_at": "yesterday", "amount": 3.0}))  # fmt: skip
        path = folder / f"day{index}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("partitions", [1, 7])
def test_the_merged_runs_equal_a_stable_sort_by_event_time(tmp_path: Path, partitions: int) -> None:
    paths = _write_inputs(tmp_path)
    expected = (
        load_events(paths).frame.sort("occurred_at", maintain_order=True)
        .with_columns(pl.col("type").cast(pl.String)).select(FIELDS).rows()
    )  # fmt: skip
    with partition_events(paths, work_dir=str(tmp_path), partitions=partitions) as log:
        assert log.rejections.rejected == 2
        merged = [(*row[3:6], from_epoch_micros(row[0]), row[6]) for row in time_ordered(log)]
    assert len(merged) == 6000
    assert merged == expected
