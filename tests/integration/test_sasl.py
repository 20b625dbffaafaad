"""The worker and the CLI's Kafka clients authenticate with SASL/SCRAM; bad credentials
fail with a one-line reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from offline.kafka_io import publish_model
from rescorer.devkafka.local import LocalKafka
from schemas.settings import RescorerSettings
from tests.support.tls import make_tls
from tests.support.toy_model import toy_model
from tests.support.worker_harness import Stack, WorkerProcess, event, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.slow]

USER, PASSWORD = "rescorer", "s3cret-scram"


@pytest.fixture(params=["SASL_PLAINTEXT", "SASL_SSL"])
def scram_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker with a SCRAM-SHA-256 listener (over TLS for SASL_SSL) that knows one user."""
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.skip("a SCRAM listener needs the local Kafka (Java 17 and Maven)")
    tls = make_tls(tmp_path / "tls") if request.param == "SASL_SSL" else None
    broker = LocalKafka(
        tmp_path / "broker", scram_users={USER: PASSWORD},
        tls_keystore=tls.keystore if tls else None, tls_password=tls.password if tls else "",
    )  # fmt: skip
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def sasl_env(broker: LocalKafka, password: str) -> dict[str, str]:
    env = {
        "RESCORER_KAFKA_SECURITY_PROTOCOL": protocol(broker),
        "RESCORER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "RESCORER_KAFKA_SASL_USERNAME": USER,
        "RESCORER_KAFKA_SASL_PASSWORD": password,
    }
    if broker.tls_keystore is not None:
        env["RESCORER_KAFKA_SSL_CAFILE"] = str(broker.tls_keystore.parent / "ca.pem")
    return env


def protocol(broker: LocalKafka) -> Literal["SASL_PLAINTEXT", "SASL_SSL"]:
    return "SASL_PLAINTEXT" if broker.tls_keystore is None else "SASL_SSL"


def test_the_worker_authenticates_through_scram_end_to_end(
    scram_broker: LocalKafka, tmp_path: Path
) -> None:
    stack = Stack(
        scram_broker.sasl_bootstrap_servers, f"s{uuid.uuid4().hex[:8]}", tmp_path, partitions=2,
        extra_env=sasl_env(scram_broker, PASSWORD),
    )  # fmt: skip
    env = sasl_env(scram_broker, PASSWORD)
    settings = RescorerSettings(
        kafka_bootstrap_servers=scram_broker.sasl_bootstrap_servers,
        kafka_security_protocol=protocol(scram_broker),
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=env.get("RESCORER_KAFKA_SSL_CAFILE"),
        topics=stack.topics,
    )
    client = settings.kafka_python_config()
    publish_model(settings, toy_model())  # kafka-python admin and producer
    worker = WorkerProcess(stack, "w")  # kafka-python admin, Faust, aiokafka (models, probe)
    try:
        worker.wait_for_log("customers restored")
        producer = KafkaProducer(**client)
        body = event("sasl-1", "scram-customer", datetime(2024, 3, 1, tzinfo=UTC), 80.0)
        producer.send(stack.topics.events, key=b"scram-customer", value=json.dumps(body).encode())
        producer.flush()
        producer.close()

        def assignment() -> dict[str, object] | None:
            consumer = KafkaConsumer(enable_auto_commit=False, **client)
            try:
                parts = [TopicPartition(stack.topics.assignments, p) for p in range(2)]
                consumer.assign(parts)
                consumer.seek_to_beginning(*parts)
                for records in consumer.poll(timeout_ms=2000).values():
                    for record in records:
                        return dict(json.loads(record.value))
                return None
            finally:
                consumer.close()

        got = wait_until("an assignment over SASL", assignment, worker, timeout=60)
        assert got["customer_id"] == "scram-customer"
    finally:
        worker.stop()


def test_a_wrong_password_fails_at_once_with_a_clear_reason(
    scram_broker: LocalKafka, tmp_path: Path
) -> None:
    stack = Stack(
        scram_broker.sasl_bootstrap_servers, f"s{uuid.uuid4().hex[:8]}", tmp_path,
        extra_env=sasl_env(scram_broker, "not-the-password"),
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "rescorer", "worker"],
        env=stack.env("bad"), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("rescorer")]
    assert len(lines) == 1, done.stderr[-2000:]
    assert "authentication failed" in lines[0]
    assert f"user {USER!r}" in lines[0]
    assert "not-the-password" not in done.stderr
