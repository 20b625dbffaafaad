"""The per-customer table: horizons, outcomes, duplicates, and its on-disk partitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from offline.customer_table import Horizon, customer_table, first_occurrences
from offline.event_validation import EVENT_SCHEMA
from offline.events_io import load_events
from offline.partitioned_log import partition_events
from tests.support.histories import event_logs, write_csv

T = datetime(2024, 6, 30, 18, 0, tzinfo=UTC)


def events(rows: list[tuple[str, str, str, datetime, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"event_id": e, "customer_id": c, "type": t, "occurred_at": at, "amount": a}
            for e, c, t, at, a in rows
        ],
        schema=EVENT_SCHEMA,
    )


def test_features_outcomes_and_counts_line_up_by_position() -> None:
    then = T - timedelta(days=90)
    log = events(
        [
            ("1", "a", "purchase", then - timedelta(days=10), 10.0),
            ("2", "a", "purchase", then + timedelta(days=5), 30.0),
            ("3", "a", "refund", then + timedelta(days=6), 5.0),
            ("4", "b", "purchase", then + timedelta(days=1), 7.0),  # new since T-H
            ("5", "c", "refund", then - timedelta(days=3), 2.0),  # a refund only: no features
            ("6", "d", "purchase", T + timedelta(days=1), 9.0),  # after T: not counted
        ]
    )
    horizon = Horizon(T, 365, then)
    table = customer_table([log.lazy()], horizon)
    assert table.rows["customer_id"].to_list() == ["a", "b", "c", "d"]
    now, past = table.features(horizon), table.features(horizon, then=True)
    assert now["customer_id"].to_list() == ["a", "b"]
    assert past["customer_id"].to_list() == ["a"]
    assert now["monetary"].to_list() == [35.0, 7.0]
    assert past["monetary"].to_list() == [10.0]
    assert table.then_in_now().tolist() == [0]
    bought, spend = table.outcomes()
    assert bought.tolist() == [True] and spend.tolist() == [25.0]
    assert table.aligned("purchases").to_list() == [2, 1]
    assert table.aligned("refunds").to_list() == [1, 0]


def test_the_window_starts_on_the_utc_day_whatever_the_horizon_zone() -> None:
    eastern = T.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))  # next day in Tokyo
    assert Horizon(eastern, 10).window_start(eastern) == Horizon(T, 10).window_start(T)
    assert Horizon(T, 10).window_start(T) == datetime(2024, 6, 21, tzinfo=UTC)


def test_first_occurrence_follows_the_order_columns_not_the_frame_order() -> None:
    at = T - timedelta(days=1)
    rows = events([("e", "a", "purchase", at, 50.0), ("e", "a", "purchase", at, 10.0)])
    # Stored out of order: the 10.0 row came first in the input (file 0).
    stored = rows.with_columns(pl.Series("file", [1, 0]), pl.Series("row", [0, 0]))
    kept = first_occurrences(stored.lazy(), ("file", "row")).collect()
    assert kept["amount"].to_list() == [10.0]
    assert first_occurrences(rows.lazy()).collect()["amount"].to_list() == [50.0]


def test_a_repeated_event_id_of_another_customer_is_not_a_duplicate() -> None:
    at = T - timedelta(days=1)
    rows = events([("e", "a", "purchase", at, 1.0), ("e", "b", "purchase", at, 2.0)])
    assert first_occurrences(rows.lazy()).collect().height == 2


@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_partitions_on_disk_give_the_in_memory_table(tmp_path: Path, partitions: int) -> None:
    rows = events(
        [
            (f"e{i % 40}", f"c{i % 13}", ("purchase", "refund", "session")[i % 3],
             T - timedelta(hours=37 * i), None if i % 3 == 2 else 1.25 * (i % 7 + 1))
            for i in range(400)
        ]
    )  # fmt: skip
    first, second = tmp_path / "a.csv", tmp_path / "b.parquet"
    write_csv(rows.head(250), first)
    rows.tail(150).write_parquet(second)
    horizon = Horizon(T, 120, T - timedelta(days=30))
    in_memory = load_events([str(first), str(second)]).customers(horizon)
    with partition_events([str(first), str(second)], partitions=partitions) as split:
        on_disk = split.customers(horizon)
        ids = in_memory.rows["customer_id"].head(4)
        assert split.events_of(ids).equals(load_events([str(first), str(second)]).events_of(ids))
        assert split.span() == load_events([str(first), str(second)]).span()
    assert on_disk.rows.equals(in_memory.rows)
    assert not split.directory.exists()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(log=event_logs())
def test_partitioning_never_changes_the_table(tmp_path_factory: pytest.TempPathFactory,
                                              log: pl.DataFrame) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("log") / "events.parquet"
    log.write_parquet(path)
    latest = log["occurred_at"].max()
    assert isinstance(latest, datetime)
    horizon = Horizon(latest, 30, latest - timedelta(days=10))
    expected = customer_table([log.lazy()], horizon).rows
    with partition_events([str(path)], partitions=4) as split:
        assert split.customers(horizon).rows.equals(expected)


def test_rejected_rows_are_counted_by_reason_with_examples(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    lines = ["event_id,customer_id,type,occurred_at,amount"]
    lines += [f"e{i},c{i},purchase,2024-05-01T10:00:00Z,5" for i in range(300)]
    lines += ["x1,c1,purchase,2024-05-01T10:00:00,5", "x2,c2,teleport,2024-05-01T10:00:00Z,"]
    path.write_text("\n".join(lines) + "\n")
    with partition_events([str(path)], partitions=2) as split:
        assert split.rejections.total_rows == 302
        assert sorted(split.rejections.counts.values()) == [1, 1]
        assert split.span().events == 300
    expected = load_events([str(path)]).rejections
    assert split.rejections.counts == expected.counts
    assert split.rejections.examples == expected.examples


def test_rejection_examples_are_the_first_in_input_order_across_files(tmp_path: Path) -> None:
    """Each input keeps its own first examples; the log's are the first of all inputs."""
    paths = []
    for n in range(3):
        lines = ["event_id,customer_id,type,occurred_at,amount"]
        lines += [f"e{n}-{i},c{i},purchase,2024-05-01T10:00:00Z,5" for i in range(100)]
        lines += [f"naive{n}-{i},c{i},purchase,2024-05-01T10:00:00,5" for i in range(2)]
        lines.insert(50, f"tp{n},c9,teleport,2024-05-01T10:00:00Z,")
        path = tmp_path / f"events{n}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    with partition_events(paths, partitions=3, max_reject_share=0.1) as split:
        examples = split.rejections.examples
    assert examples == load_events(paths, max_reject_share=0.1).rejections.examples
    naive = examples["occurred_at has no timezone"]
    assert [e.split(",")[0] for e in naive] == ["naive0-0", "naive0-1", "naive1-0"]
    unknown = next(v for k, v in examples.items() if k.startswith("type is not"))
    assert [e.split(",")[0] for e in unknown] == ["tp0", "tp1", "tp2"]


def test_a_line_that_is_not_json_is_rejected_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = (
        '{"event_id":"e%d","customer_id":"c","type":"purchase",'
        '"occurred_at":"2024-05-01T10:00:00Z","amount":%d}'
    )
    path.write_text("\n".join([good % (i, i + 1) for i in range(200)] + ["not json"]) + "\n")
    with partition_events([str(path)]) as split:
        assert split.span().events == 200
        assert split.rejections.counts == {"line is not a JSON object": 1}


def test_a_missing_work_dir_is_an_input_error(tmp_path: Path) -> None:
    from offline.errors import InputError

    path = tmp_path / "e.csv"
    path.write_text(
        "event_id,customer_id,type,occurred_at,amount\ne,c,purchase,2024-05-01T10:00:00Z,1\n"
    )
    with pytest.raises(InputError, match="does not exist"):
        partition_events([str(path)], work_dir=str(tmp_path / "nowhere"))
