"""`--engine spark` against a real local Spark: the same table and model as the polars engine."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline.customer_table import Horizon
from offline.events_io import load_events
from offline.partitioned_log import partition_events
from tests.support.cli import run
from tests.support.histories import event_logs, write_csv

pytestmark = pytest.mark.integration


def both(paths: list[str], horizon_of: Any, spark_session: Any) -> tuple[Any, Any, Any, Any]:
    """(polars table, spark table, polars history, spark history) for the same files."""
    from offline.spark_history import open_spark_history

    with (
        partition_events(paths, max_reject_share=1.0) as split,
        open_spark_history(paths, max_reject_share=1.0) as spark,
    ):
        assert spark.span() == split.span()
        horizon = horizon_of(split.span())
        return split.customers(horizon), spark.customers(horizon), split, spark


def test_cdnow_features_are_identical(cdnow_events: Path, spark_session: Any) -> None:
    from offline.spark_history import open_spark_history

    log = load_events([str(cdnow_events)])
    span = log.span()
    for as_of in (span.latest, span.latest - timedelta(days=200)):
        horizon = Horizon(as_of, 365, as_of - timedelta(days=90))
        expected = log.customers(horizon)
        with open_spark_history([str(cdnow_events)]) as spark:
            assert spark.span() == span
            table = spark.customers(horizon)
            ids = expected.rows["customer_id"].head(7)
            assert spark.events_of(ids).equals(log.events_of(ids))
        assert table.rows.equals(expected.rows)
        assert table.features(horizon).equals(expected.features(horizon))
        assert table.features(horizon, then=True).equals(expected.features(horizon, then=True))
        assert table.channels.sort(pl.all()).equals(expected.channels.sort(pl.all()))


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(logs=st.lists(event_logs(), min_size=8, max_size=16), window=st.integers(1, 400))
def test_generated_logs_give_identical_tables(
    tmp_path_factory: pytest.TempPathFactory, spark_session: Any,
    logs: list[pl.DataFrame], window: int,
) -> None:  # fmt: skip
    # Many small logs in one Spark run: customers kept apart per log, then split into
    # three files of two formats, so that duplicates also cross files.
    frame = pl.concat(
        [log.with_columns(pl.format("{}-{}", pl.lit(i), "customer_id").alias("customer_id"))
         for i, log in enumerate(logs)]
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("generated")
    third = max(1, frame.height // 3)
    paths = [folder / "a part.csv", folder / "b.parquet", folder / "c.csv"]
    write_csv(frame.slice(0, third), paths[0])
    frame.slice(third, third).write_parquet(paths[1])
    write_csv(frame.slice(2 * third), paths[2])

    def horizon(span: Any) -> Horizon:
        middle = span.earliest + (span.latest - span.earliest) / 2
        return Horizon(middle, window, middle - timedelta(days=30))

    ours, theirs, _, _ = both([str(p) for p in paths], horizon, spark_session)
    assert theirs.rows.equals(ours.rows)
    assert theirs.channels.sort(pl.all()).equals(ours.channels.sort(pl.all()))


def test_the_first_occurrence_is_the_first_file_s(tmp_path: Path, spark_session: Any) -> None:
    header = "event_id,customer_id,type,occurred_at,amount\n"
    (tmp_path / "1.csv").write_text(header + "e1,c,purchase,2024-05-01T10:00:00Z,10\n")
    (tmp_path / "2.csv").write_text(header + "e1,c,purchase,2024-05-02T10:00:00Z,99\n")
    ours, theirs, _, _ = both([str(tmp_path)], lambda s: Horizon(s.latest, 365), spark_session)
    assert theirs.rows["net_micros"].to_list() == ours.rows["net_micros"].to_list() == [10_000_000]


def test_rejected_rows_are_counted_alike(tmp_path: Path, spark_session: Any) -> None:
    lines = ["event_id,customer_id,type,occurred_at,amount,currency"]
    lines += [f"e{i},c{i % 9},purchase,2024-05-01T10:00:00+02:00,{i + 1}.5,EUR" for i in range(60)]
    lines += [
        ",c1,purchase,2024-05-01T10:00:00Z,5,EUR",
        "x2,c2,teleport,2024-05-01T10:00:00Z,5,EUR",
        "x3,c3,purchase,2024-05-01 10:00:00,5,EUR",
        "x4,c4,purchase,yesterday+01:00,5,EUR",
        "x5,c5,purchase,2024-05-01T10:00:00Z,,EUR",
        "x6,c6,refund,2024-05-01T10:00:00Z,-3,EUR",
        "x7,c7,session,2024-05-01T10:00:00Z,3,",
        "x8,c8,purchase,2024-05-01T10:00:00Z,3,euro",
    ]
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    good = {"event_id": "j1", "customer_id": "c1", "type": "session",
            "occurred_at": "2024-05-03T00:00:00Z"}  # fmt: skip
    (tmp_path / "more.jsonl").write_text(json.dumps(good) + "\nnot json at all\n")
    _, _, ours, theirs = both([str(tmp_path)], lambda s: Horizon(s.latest, 365), spark_session)
    assert theirs.rejections.counts == ours.rejections.counts
    assert len(theirs.rejections.counts) == 9
    assert theirs.rejections.total_rows == ours.rejections.total_rows == 70
    assert theirs.rejections.examples["line is not a JSON object"] == ["not json at all"]


def test_train_with_spark_gives_the_polars_model(
    cdnow_events: Path, tmp_path: Path, spark_session: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["train", "--events", str(cdnow_events), "--bootstrap", "3"]
    code, out, _ = run([*common, "--engine", "spark", "--model-dir", str(tmp_path / "s")], capsys)
    assert code == 0, out
    assert run([*common, "--model-dir", str(tmp_path / "p")], capsys)[0] == 0
    spark_model = json.loads((tmp_path / "s" / "model-v000001.json").read_text())
    polars_model = json.loads((tmp_path / "p" / "model-v000001.json").read_text())
    for volatile in ("created_at",):
        spark_model.pop(volatile), polars_model.pop(volatile)
    assert spark_model == polars_model
    assert re.search(r"2349 customers, 6919 events", out)


def test_engine_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["train", "--from-kafka", "--engine", "spark"], capsys)
    assert code == 2 and "--engine spark reads --events files" in err
    code, _, err = run(["train", "--events", str(tmp_path), "--spark-master", "local[1]"], capsys)
    assert code == 2 and "--spark-master needs --engine spark" in err


def test_an_unknown_url_scheme_is_one_line(spark_session: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    code, _, err = run(["train", "--engine", "spark", "--events", "nosuch://bucket/x.parquet"],
                       capsys)  # fmt: skip
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err


def test_urls_are_listed_through_hadoop(tmp_path: Path, spark_session: Any) -> None:
    from offline.errors import InputError
    from offline.spark_history import _remote_files

    (tmp_path / "sub").mkdir()
    (tmp_path / "b.csv").write_text("x\n")
    (tmp_path / "sub" / "a.parquet").write_text("x\n")
    (tmp_path / "notes.txt").write_text("x\n")
    # The same Hadoop FileSystem calls serve hdfs://, s3a://, abfs://; file:// is here.
    listed = _remote_files(spark_session, tmp_path.as_uri())
    assert [Path(f.path).name for f in listed] == ["b.csv", "a.parquet"]
    assert [f.kind for f in listed] == ["csv", "parquet"]
    assert [
        Path(f.path).name for f in _remote_files(spark_session, f"{tmp_path.as_uri()}/*.csv")
    ] == ["b.csv"]
    with pytest.raises(InputError, match="no such file"):
        _remote_files(spark_session, f"{tmp_path.as_uri()}/missing/*.csv")
