"""Topics for integration tests on the shared broker: create one, fill it."""

from __future__ import annotations

from collections.abc import Iterable

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from schemas.settings import RescorerSettings


def create_topic(settings: RescorerSettings, name: str, partitions: int) -> None:
    """A topic of `partitions` partitions, replication factor 1."""
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def send(
    settings: RescorerSettings,
    topic: str,
    records: Iterable[tuple[int | None, bytes | None, bytes | None]],
) -> None:
    """(partition, key, value) records, in order, acknowledged by all replicas.

    A partition of None leaves the choice to the producer's partitioner.
    """
    producer = KafkaProducer(acks="all", **settings.kafka_python_config())
    try:
        for partition, key, value in records:
            producer.send(topic, key=key, value=value, partition=partition)
        producer.flush()
    finally:
        producer.close()
