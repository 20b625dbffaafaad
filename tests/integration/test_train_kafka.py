"""The trainer's Kafka edge against the real broker: --from-kafka and --publish."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from offline.synthetic import synthetic_events
from rescorer.cli import main
from rescorer.devkafka import ProvidedBroker
from schemas import load_segment_model

pytestmark = pytest.mark.integration


def test_train_from_kafka_and_publish(
    kafka: ProvidedBroker,
    topic_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events_topic, models_topic = f"{topic_prefix}-events", f"{topic_prefix}-models"
    monkeypatch.setenv("RESCORER_KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    monkeypatch.setenv("RESCORER_TOPIC_EVENTS", events_topic)
    monkeypatch.setenv("RESCORER_TOPIC_MODELS", models_topic)
    events, _ = synthetic_events(400, seed=3)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=10)
    rows = events.with_columns(events["occurred_at"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
    for row in rows.iter_rows(named=True):
        payload = {k: v for k, v in row.items() if v is not None}
        producer.send(
            events_topic, key=row["customer_id"].encode(), value=json.dumps(payload).encode()
        )
    producer.send(events_topic, key=b"x", value=b"{broken json")  # counted, not fatal
    producer.flush()
    producer.close()

    code = main(
        [
            "train",
            "--from-kafka",
            "--model-dir",
            str(tmp_path),
            "--bootstrap",
            "3",
            "--publish",
            "--max-invalid-share",
            "0.05",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert f"{events.height} events" in out
    assert "payload is not a JSON object" in out
    assert f"published v1 to {models_topic}" in out

    consumer = KafkaConsumer(
        models_topic,
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    records = list(consumer)
    consumer.close()
    assert len(records) == 1
    assert records[0].key == b"active"
    model = load_segment_model(records[0].value)
    assert model.version == 1
    assert model.n_events == events.height
    assert os.environ["RESCORER_TOPIC_MODELS"] == models_topic


def test_from_kafka_on_a_missing_topic_is_a_usage_error(
    kafka: ProvidedBroker,
    topic_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RESCORER_KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    monkeypatch.setenv("RESCORER_TOPIC_EVENTS", f"{topic_prefix}-nothing-here")
    code = main(["train", "--from-kafka", "--model-dir", str(tmp_path)])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
