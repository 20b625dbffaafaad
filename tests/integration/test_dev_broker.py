"""The dev broker command and the fixture's broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rescorer.devkafka import ProvidedBroker
from rescorer.devkafka.probe import broker_responds

pytestmark = pytest.mark.integration


def test_fixture_broker_serves_metadata(kafka: ProvidedBroker) -> None:
    assert broker_responds(kafka.bootstrap_servers)


def test_fixture_broker_supports_transactions(kafka: ProvidedBroker, topic_prefix: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        transactional_id=f"{topic_prefix}-tx",
        enable_idempotence=True,
    )
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(f"{topic_prefix}-tx", b"committed")
    producer.commit_transaction()
    producer.close()


@pytest.mark.skipif(
    os.environ.get("RESCORER_KAFKA_BOOTSTRAP_SERVERS") is not None,
    reason="a configured broker replaces the local one; nothing local to start",
)
def test_kafka_command_start_status_stop(tmp_path: Path) -> None:
    def rescorer(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rescorer", "kafka", *args, "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    started = rescorer("start", "--port", "0")
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip()
    try:
        assert broker_responds(bootstrap)
        assert rescorer("start", "--port", "0").stdout.strip() == bootstrap  # idempotent
        status = rescorer("status")
        assert status.returncode == 0
        assert bootstrap in status.stdout
    finally:
        stopped = rescorer("stop")
    assert stopped.returncode == 0
    assert not broker_responds(bootstrap, timeout_ms=1000)
    assert rescorer("status").returncode == 3
    assert not (tmp_path / "broker").exists()
