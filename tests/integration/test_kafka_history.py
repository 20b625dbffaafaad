"""The events topic read out of core on a real broker: chunk by chunk into the same
per-customer partitions as files, with the same table, rejections and de-duplication."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from offline import kafka_history
from offline.customer_table import Horizon
from offline.kafka_history import partition_topic
from offline.partitioned_log import partition_events
from offline.synthetic import synthetic_events
from rescorer.devkafka import ProvidedBroker
from schemas.settings import RescorerSettings

pytestmark = pytest.mark.integration


def test_the_topic_split_in_small_chunks_gives_the_table_of_its_events_as_a_file(
    kafka: ProvidedBroker, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"{topic_prefix}-events"
    settings = RescorerSettings(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        topics={"events": topic},  # type: ignore[arg-type]
    )
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        admin.close()
    events, _ = synthetic_events(120, seed=5)
    rows = events.with_columns(events["occurred_at"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
    bodies = [{k: v for k, v in row.items() if v is not None} for row in rows.iter_rows(named=True)]
    producer = KafkaProducer(acks="all", **settings.kafka_python_config())
    try:
        for body in bodies:
            producer.send(topic, key=body["customer_id"].encode(), value=json.dumps(body).encode())
        for body in bodies[:40]:  # redelivered much later: other chunks, counted once
            producer.send(topic, key=body["customer_id"].encode(), value=json.dumps(body).encode())
        spread = json.dumps(bodies[0], indent=2).encode()  # one object over several lines
        producer.send(topic, key=bodies[0]["customer_id"].encode(), value=spread)
        producer.send(topic, key=b"x", value=b"{not json")
        producer.send(topic, key=b"y", value=None)  # a tombstone
        producer.send(topic, key=b"z", value=b"[1, 2]")
        producer.flush()
    finally:
        producer.close()
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
