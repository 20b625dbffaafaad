"""Access control against Kafka's own authorizer, and signed model artifacts.

A broker with KRaft's StandardAuthorizer and SCRAM users: `rescorer acl apply`
(as the admin) grants each principal its least privilege; the worker then
runs end to end under its own user, the trainer publishes a model, a reader
reads changes and nothing else, and a denied client gets one line from our
tools. Signing: a running worker refuses unsigned and wrongly signed models
and says why in `rescorer_models_rejected_total{reason}`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.client_async import KafkaClient
from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
from kafka.protocol.metadata import MetadataRequest

from offline.kafka_io import ACTIVE_MODEL_KEY, publish_model
from rescorer.devkafka import ProvidedBroker
from rescorer.devkafka.local import LocalKafka
from rescorer.errors import EXIT_DENIED
from schemas.model import sign_model
from schemas.registry import ModelRegistry
from schemas.segments import SegmentChange
from tests.support.toy_model import toy_model
from tests.support.worker_harness import (
    Stack,
    WorkerProcess,
    event,
    produce,
    read_all,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORDS = {
    "admin": "admin-secret",
    "worker": "worker-secret",
    "trainer": "trainer-secret",
    "reader": "reader-secret",
}
KEY = "signing-key-0123456789abcdef"
RETIRED_KEY = "retired-key-0123456789abcdef"
STRANGER_KEY = "stranger-key-0123456789abcdef"
TOPIC_AUTHORIZATION_FAILED = TopicAuthorizationFailedError.errno


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker that authorizes every request: admin is a super user, others need ACLs."""
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.skip("the authorizer test needs the local Kafka (Java 17 and Maven)")
    broker = LocalKafka(
        tmp_path_factory.mktemp("secured") / "broker", scram_users=PASSWORDS,
        super_users=("admin",),
    )  # fmt: skip
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def as_user(broker: LocalKafka, user: str) -> dict[str, str]:
    """The environment our tools read to connect as `user`."""
    return {
        "RESCORER_KAFKA_BOOTSTRAP_SERVERS": broker.sasl_bootstrap_servers,
        "RESCORER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "RESCORER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "RESCORER_KAFKA_SASL_USERNAME": user,
        "RESCORER_KAFKA_SASL_PASSWORD": PASSWORDS[user],
    }


def client(broker: LocalKafka, user: str) -> dict[str, Any]:
    """kafka-python keyword arguments for `user`."""
    return {
        "bootstrap_servers": broker.sasl_bootstrap_servers,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": user,
        "sasl_plain_password": PASSWORDS[user],
    }


def rescorer(stack: Stack, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rescorer", *args],
        env={**stack.env("cli"), **env}, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def topic_errors(broker: LocalKafka, user: str, topics: list[str]) -> dict[str, int]:
    """The broker's error code per topic in a metadata answer to `user`.

    Consumers only log a refused topic and return nothing, so the test asks the
    broker directly: without DESCRIBE (which any READ or WRITE grant implies)
    the answer is TOPIC_AUTHORIZATION_FAILED, so nothing on it can be read.
    """
    kafka_client = KafkaClient(**client(broker, user))
    try:
        deadline = time.monotonic() + 30
        node = kafka_client.least_loaded_node()
        while not kafka_client.ready(node):
            assert time.monotonic() < deadline, "no connection to the broker"
            kafka_client.poll(timeout_ms=200)
        future = kafka_client.send(node, MetadataRequest[1](topics=topics))
        kafka_client.poll(future=future, timeout_ms=30_000)
        assert future.succeeded(), future.exception
        return {topic: error for error, topic, *_ in future.value.topics}
    finally:
        kafka_client.close()


def first_record(broker: LocalKafka, user: str, topic: str, group: str | None = None) -> Any:
    """Poll `topic` from the beginning as `user`; the first record, or None."""
    consumer = KafkaConsumer(
        group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
        consumer_timeout_ms=3000, isolation_level="read_committed", **client(broker, user),
    )  # fmt: skip
    try:
        if group is None:
            parts = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
        else:
            consumer.subscribe([topic])
        for records in consumer.poll(timeout_ms=3000).values():
            if records:
                return records[0]
        return None
    finally:
        consumer.close()


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_each_principal_does_its_job_under_the_plan_and_nothing_more(
    secured: LocalKafka, tmp_path: Path, guarantee: str
) -> None:
    stack = Stack(
        secured.sasl_bootstrap_servers, f"a{uuid.uuid4().hex[:8]}", tmp_path, partitions=2,
        extra_env={**as_user(secured, "worker"), "RESCORER_MODEL_VERIFY_KEYS": KEY,
                   "RESCORER_PROCESSING_GUARANTEE": guarantee},
    )  # fmt: skip
    topics = stack.topics
    principals = ["--principal-worker", "User:worker", "--principal-trainer", "User:trainer",
                  "--principal-reader", "User:reader"]  # fmt: skip

    bad = rescorer(stack, as_user(secured, "admin"), "acl", "plan", "--principal-worker", "worker")
    assert bad.returncode == 2, bad.stderr
    assert "User:<name>" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

    not_admin = rescorer(stack, as_user(secured, "reader"), "acl", "apply", *principals)
    assert not_admin.returncode == EXIT_DENIED, not_admin.stderr
    assert "not authorized" in not_admin.stderr and "Traceback" not in not_admin.stderr

    applied = rescorer(stack, as_user(secured, "admin"), "acl", "apply", *principals)
    assert applied.returncode == 0, applied.stderr
    assert f"User:reader  READ     topic {topics.changes}" in applied.stdout
    transactional = [
        line.removeprefix("granted ")
        for line in applied.stdout.splitlines()
        if "transactional_id" in line
    ]
    if guarantee == "exactly_once":  # the worker's step producers, and nobody else
        assert transactional == [f"User:worker  WRITE    transactional_id {stack.prefix}-step-*"]
    else:
        assert transactional == []

    # The trainer publishes a signed model; the reader may not.
    registry = ModelRegistry(tmp_path / "models")
    registry.save(toy_model())
    registry.promote(1)
    publishing = {"RESCORER_MODEL_DIR": str(registry.root), "RESCORER_MODEL_SIGNING_KEY": KEY}
    published = rescorer(
        stack, {**as_user(secured, "trainer"), **publishing}, "models", "publish"
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    refused = rescorer(stack, {**as_user(secured, "reader"), **publishing}, "models", "publish")
    assert refused.returncode == EXIT_DENIED, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "not authorized" in refused.stderr and "reader" in refused.stderr

    # The worker runs end to end under its own principal.
    worker = WorkerProcess(stack, "w")
    try:
        worker.wait_for_log("model v1 loaded")
        producer = KafkaProducer(**client(secured, "admin"))
        body = event("acl-1", "acl-customer", datetime(2024, 3, 1, tzinfo=UTC), 80.0)
        producer.send(topics.events, key=b"acl-customer", value=json.dumps(body).encode())
        producer.flush()
        producer.close()
        change = wait_until(
            "the reader to see the change",
            lambda: first_record(secured, "reader", topics.changes, "segment-readers-crm"),
            worker, timeout=90,
        )  # fmt: skip
        assert json.loads(change.value)["customer_id"] == "acl-customer"
    finally:
        assert worker.stop() == 0, worker.tail()

    # A reader sees changes and band changes only: not the events, not the assignments.
    seen = [topics.changes, topics.band_changes, topics.events, topics.assignments]
    assert topic_errors(secured, "reader", seen) == {
        topics.changes: 0,
        topics.band_changes: 0,
        topics.events: TOPIC_AUTHORIZATION_FAILED,
        topics.assignments: TOPIC_AUTHORIZATION_FAILED,
    }
    assert topic_errors(secured, "worker", [topics.assignments, topics.events]) == {
        topics.assignments: 0, topics.events: 0,
    }  # fmt: skip
    # Nor may it use a group outside its prefix, or write a model.
    admin = KafkaAdminClient(**client(secured, "reader"))
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            admin.list_consumer_group_offsets("someone-elses-group")
    finally:
        admin.close()
    writer = KafkaProducer(max_block_ms=10_000, **client(secured, "reader"))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            writer.send(topics.models, key=b"active", value=b"{}").get(timeout=10)
    finally:
        writer.close()


def test_a_running_worker_refuses_unsigned_and_wrongly_signed_models(
    kafka: ProvidedBroker, tmp_path: Path
) -> None:
    stack = Stack(
        kafka.bootstrap_servers, f"g{uuid.uuid4().hex[:8]}", tmp_path, partitions=2,
        extra_env={"RESCORER_MODEL_VERIFY_KEYS": f"{RETIRED_KEY},{KEY}"},
    )  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")

    def publish(body: bytes) -> None:
        producer.send(stack.topics.models, key=ACTIVE_MODEL_KEY, value=body).get(timeout=30)

    def rejected() -> dict[str, float]:
        return {
            reason: worker.metrics()[f'rescorer_models_rejected_total{{reason="{reason}"}}']
            for reason in ("invalid", "unsigned", "unknown_key", "bad_signature")
        }

    from offline.kafka_io import ensure_compacted_topic

    ensure_compacted_topic(stack.settings(), stack.topics.models)
    publish(sign_model(toy_model(1), RETIRED_KEY.encode()).model_dump_json().encode())
    worker = WorkerProcess(stack, "w")
    try:
        worker.wait_for_log("model v1 loaded")  # signed with a key still accepted
        assert rejected() == {"invalid": 0, "unsigned": 0, "unknown_key": 0, "bad_signature": 0}
        produce(stack, [event("s-1", "c-1", datetime(2024, 3, 1, tzinfo=UTC), 50.0)])

        publish(toy_model(2).model_dump_json().encode())
        publish(sign_model(toy_model(3), STRANGER_KEY.encode()).model_dump_json().encode())
        tampered = json.loads(sign_model(toy_model(4), KEY.encode()).model_dump_json())
        tampered["segments"][0]["centroid"][0] += 0.5
        publish(json.dumps(tampered).encode())
        wait_until(
            "three rejections",
            lambda: sum(rejected().values()) >= 3,
            worker, timeout=60,
        )  # fmt: skip
        assert rejected() == {"invalid": 0, "unsigned": 1, "unknown_key": 1, "bad_signature": 1}
        assert worker.metrics()["rescorer_model_version"] == 1
        log = worker.log()
        assert "not signed" in log and "not an accepted key" in log
        assert KEY not in log and STRANGER_KEY not in log and RETIRED_KEY not in log

        publish(sign_model(toy_model(5), KEY.encode()).model_dump_json().encode())
        wait_until(
            "the correctly signed model",
            lambda: worker.metrics()["rescorer_model_version"] == 5,
            worker, timeout=60,
        )  # fmt: skip
    finally:
        producer.close()
        assert worker.stop() == 0, worker.tail()


def test_changes_can_leave_the_features_out(kafka: ProvidedBroker, tmp_path: Path) -> None:
    stack = Stack(
        kafka.bootstrap_servers, f"m{uuid.uuid4().hex[:8]}", tmp_path, partitions=2,
        extra_env={"RESCORER_CHANGES_INCLUDE_FEATURES": "false"},
    )  # fmt: skip
    publish_model(stack.settings(), toy_model())
    worker = WorkerProcess(stack, "w")
    try:
        worker.wait_for_log("customers restored")
        produce(stack, [event("m-1", "minimal", datetime(2024, 3, 1, tzinfo=UTC), 120.0)])
        changes = wait_until(
            "a change", lambda: read_all(stack, stack.topics.changes), worker, timeout=60
        )  # fmt: skip
        assignments = wait_until(
            "an assignment", lambda: read_all(stack, stack.topics.assignments), worker, timeout=60
        )  # fmt: skip
    finally:
        assert worker.stop() == 0, worker.tail()
    assert changes[0]["customer_id"] == "minimal" and "features" not in changes[0]
    assert SegmentChange.model_validate(changes[0]).features is None
    assert assignments[0]["features"]["monetary"] == 120.0  # the assignments topic keeps them
