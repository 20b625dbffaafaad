"""Produce and consume contracts through the real broker with each client we use."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer

from rescorer.devkafka import ProvidedBroker
from schemas import CustomerEvent
from schemas.settings import RescorerSettings
from tests.support.topics import create_topic

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def events(n: int, prefix: str) -> list[CustomerEvent]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        CustomerEvent(
            event_id=f"{prefix}-e{i}",
            customer_id=f"c{i % 7}",
            type="purchase",
            occurred_at=start + timedelta(hours=i),
            amount=10.0 + i,
        )
        for i in range(n)
    ]


def settings_for(kafka: ProvidedBroker) -> RescorerSettings:
    return RescorerSettings(kafka_bootstrap_servers=kafka.bootstrap_servers)


def consume(
    settings: RescorerSettings, topic: str, expected: int, timeout_s: float = 60.0
) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
        **settings.kafka_python_config(),
    )
    received: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(received) < expected and time.monotonic() < deadline:
            received.extend((m.key, m.value) for m in consumer)
    finally:
        consumer.close()
    return received


def test_kafka_python_round_trip_keeps_key_and_contract(
    kafka: ProvidedBroker, topic_prefix: str
) -> None:
    settings = settings_for(kafka)
    topic = f"{topic_prefix}-events"
    create_topic(settings, topic, partitions=3)
    sent = events(50, topic_prefix)
    producer = KafkaProducer(acks="all", **settings.kafka_python_config())
    for event in sent:
        producer.send(topic, key=event.customer_id.encode(), value=event.model_dump_json().encode())
    producer.flush()
    producer.close()

    received = consume(settings, topic, len(sent))
    decoded = {CustomerEvent.model_validate_json(v).event_id: (k, v) for k, v in received}
    assert len(received) == len(sent)
    for event in sent:
        key, value = decoded[event.event_id]
        assert key == event.customer_id.encode()
        assert CustomerEvent.model_validate_json(value) == event


def test_aiokafka_round_trip(kafka: ProvidedBroker, topic_prefix: str) -> None:
    settings = settings_for(kafka)
    topic = f"{topic_prefix}-aio"
    sent = events(20, topic_prefix)

    async def scenario() -> list[CustomerEvent]:
        producer = AIOKafkaProducer(acks="all", **settings.aiokafka_config())
        await producer.start()
        try:
            for event in sent:
                await producer.send_and_wait(
                    topic, key=event.customer_id.encode(), value=event.model_dump_json().encode()
                )
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **settings.aiokafka_config(),
        )
        await consumer.start()
        out: list[CustomerEvent] = []
        try:
            while len(out) < len(sent):
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                for records in batch.values():
                    out.extend(CustomerEvent.model_validate_json(r.value) for r in records)
        finally:
            await consumer.stop()
        return out

    assert asyncio.run(scenario()) == sent


def test_faust_worker_consumes_and_produces(
    kafka: ProvidedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    settings = settings_for(kafka)
    source, sink = f"{topic_prefix}-in", f"{topic_prefix}-out"
    create_topic(settings, source, partitions=3)
    create_topic(settings, sink, partitions=3)
    env = {
        **os.environ,
        "RESCORER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "ECHO_APP_ID": f"{topic_prefix}-echo",
        "ECHO_IN": source,
        "ECHO_OUT": sink,
        "ECHO_DATADIR": str(tmp_path / "faust"),
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faust",
            "-A",
            "tests.support.faust_echo",
            "worker",
            "--loglevel",
            "warn",
            "--without-web",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        sent = events(30, topic_prefix)
        producer = KafkaProducer(**settings.kafka_python_config())
        for event in sent:
            producer.send(
                source, key=event.customer_id.encode(), value=event.model_dump_json().encode()
            )
        producer.flush()
        producer.close()
        received = consume(settings, sink, len(sent), timeout_s=90)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
    assert worker.returncode is not None
    by_id = {CustomerEvent.model_validate_json(v).event_id: k for k, v in received}
    assert sorted(by_id) == sorted(e.event_id for e in sent), (tmp_path / "worker.log").read_text()
    assert all(by_id[e.event_id] == e.customer_id.encode() for e in sent)
