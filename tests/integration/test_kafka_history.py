"""The events topic read out of core on a real broker: chunk by chunk into the same
per-customer partitions as files, with the same table, rejections and de-duplication."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from offline import kafka_history
from offline.customer_table import Horizon
from offline.kafka_history import partition_topic
from offline.partitioned_log import partition_events
from offline.synthetic import synthetic_events
from rescorer.devkafka import ProvidedBroker
from schemas.settings import RescorerSettings
from tests.support.topics import create_topic, send

pytestmark = pytest.mark.integration


def events_topic(kafka: ProvidedBroker, prefix: str) -> tuple[str, RescorerSettings]:
    """A new events topic of 3 partitions, and settings that name it."""
    topic = f"{prefix}-events"
    settings = RescorerSettings(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        topics={"events": topic},  # type: ignore[arg-type]
    )
    create_topic(settings, topic, 3)
    return topic, settings


def json_bodies(events: pl.DataFrame) -> list[dict[str, Any]]:
    """Each event as the JSON object a producer sends (no null fields)."""
    rows = events.with_columns(events["occurred_at"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
    return [{k: v for k, v in row.items() if v is not None} for row in rows.iter_rows(named=True)]


def test_the_topic_split_in_small_chunks_gives_the_table_of_its_events_as_a_file(
    kafka: ProvidedBroker, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, settings = events_topic(kafka, topic_prefix)
    events, _ = synthetic_events(120, seed=5)
    bodies = json_bodies(events)
    spread = json.dumps(bodies[0], indent=2).encode()  # one object over several lines
    send(
        settings,
        topic,
        [
            *((None, b["customer_id"].encode(), json.dumps(b).encode()) for b in bodies),
            # redelivered much later: other chunks, counted once
            *((None, b["customer_id"].encode(), json.dumps(b).encode()) for b in bodies[:40]),
            (None, bodies[0]["customer_id"].encode(), spread),
            (None, b"x", b"{not json"),
            (None, b"y", None),  # a tombstone
            (None, b"z", b"[1, 2]"),
        ],
    )
    as_file = tmp_path / "events.jsonl"
    as_file.write_text("".join(json.dumps(b) + "\n" for b in bodies))

    monkeypatch.setattr(kafka_history, "CHUNK_RECORDS", 97)  # many chunks per partition
    progress: list[str] = []
    with partition_topic(settings, 0.05, str(tmp_path), progress.append) as from_topic:
        with partition_events([str(as_file)], work_dir=str(tmp_path)) as from_file:
            span, file_span = from_topic.span(), from_file.span()
            assert (span.earliest, span.latest) == (file_span.earliest, file_span.latest)
            assert span.events == len(bodies) + 40 + 1  # valid rows, copies included
            horizon = Horizon(span.latest, 365, span.latest - timedelta(days=60))
            ours = from_topic.customers(horizon)
            theirs = from_file.customers(horizon)
            assert ours.rows.equals(theirs.rows)
            assert ours.channels.sort(pl.all()).equals(theirs.channels.sort(pl.all()))
        rejections = from_topic.rejections
        assert rejections.total_rows == len(bodies) + 40 + 1 + 3
        assert rejections.counts == {"payload is not a JSON object": 3}
        assert from_topic.sources == [f"kafka:{topic}"]
        chunked = sorted(from_topic.directory.glob("f*"))
        assert len(chunked) >= 3  # split chunk by chunk, not at once
    assert not from_topic.directory.exists()  # the partitions go with the log
    assert any(f"{topic}[2]: read" in line for line in progress)


def test_a_missing_topic_is_named(kafka: ProvidedBroker, topic_prefix: str) -> None:
    settings = RescorerSettings(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        topics={"events": f"{topic_prefix}-absent"},  # type: ignore[arg-type]
    )
    with pytest.raises(Exception, match=f"topic {topic_prefix}-absent does not exist"):
        partition_topic(settings)


def test_files_and_topic_together_give_the_features_of_their_union(
    kafka: ProvidedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """The older history in files (Parquet and JSON Lines), the recent part in the topic,
    a fifth of the events in both: every (customer_id, event_id) counts once."""
    topic, settings = events_topic(kafka, topic_prefix)
    events, _ = synthetic_events(200, seed=8)
    events = events.sort("occurred_at")
    bodies = json_bodies(events)
    older, newer = int(len(bodies) * 0.6), int(len(bodies) * 0.4)
    exports = tmp_path / "exports"
    exports.mkdir()
    events[: older // 2].write_parquet(exports / "day1.parquet")
    (exports / "day2.jsonl").write_text(
        "".join(json.dumps(b) + "\n" for b in bodies[older // 2 : older])
    )
    send(
        settings,
        topic,
        ((None, b["customer_id"].encode(), json.dumps(b).encode()) for b in bodies[newer:]),
    )
    everything = tmp_path / "all.jsonl"
    everything.write_text("".join(json.dumps(b) + "\n" for b in bodies))

    with (
        partition_topic(settings, work_dir=str(tmp_path), files=[str(exports)]) as union,
        partition_events([str(everything)], work_dir=str(tmp_path)) as whole,
    ):
        span = whole.span()
        assert union.span().events == older + len(bodies) - newer  # the copies are rows
        horizon = Horizon(span.latest, 365, span.latest - timedelta(days=60))
        ours, theirs = union.customers(horizon), whole.customers(horizon)
        assert ours.rows.height == theirs.rows.height == events["customer_id"].n_unique()
        assert ours.rows.sort("customer_id").equals(theirs.rows.sort("customer_id"))
        assert ours.channels.sort(pl.all()).equals(theirs.channels.sort(pl.all()))
        assert union.sources == [
            str(exports / "day1.parquet"),
            str(exports / "day2.jsonl"),
            f"kafka:{topic}",
        ]
        assert union.rejections.rejected == 0


def test_an_aborted_transactions_events_are_not_read_and_a_committed_ones_are(
    kafka: ProvidedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """As the worker reads (read_committed): the markers are skipped, an abort drops."""
    from kafka import KafkaProducer

    topic, settings = events_topic(kafka, topic_prefix)
    bodies = json_bodies(synthetic_events(30, seed=11)[0])
    plain, committed, aborted = bodies[:50], bodies[50:120], bodies[120:200]
    send(
        settings, topic, ((None, b["customer_id"].encode(), json.dumps(b).encode()) for b in plain)
    )
    producer = KafkaProducer(
        transactional_id=f"{topic_prefix}-upstream", enable_idempotence=True,
        **settings.kafka_python_config(),
    )  # fmt: skip
    try:
        producer.init_transactions()
        for part, commit in ((committed, True), (aborted, False)):
            producer.begin_transaction()
            for b in part:
                producer.send(topic, key=b["customer_id"].encode(), value=json.dumps(b).encode())
            producer.flush()
            (producer.commit_transaction if commit else producer.abort_transaction)()
    finally:
        producer.close()
    expected = tmp_path / "expected.jsonl"
    expected.write_text("".join(json.dumps(b) + "\n" for b in plain + committed))

    with (
        partition_topic(settings, work_dir=str(tmp_path)) as from_topic,
        partition_events([str(expected)], work_dir=str(tmp_path)) as from_file,
    ):
        assert from_topic.rejections.total_rows == len(plain) + len(committed)
        span = from_file.span()
        horizon = Horizon(span.latest, 365, None)
        ours, theirs = from_topic.customers(horizon), from_file.customers(horizon)
        assert ours.rows.sort("customer_id").equals(theirs.rows.sort("customer_id"))
