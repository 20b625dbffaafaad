"""A real Apache Kafka broker for development and tests, wherever the code runs.

`provide_broker` tries, in order: ``RESCORER_KAFKA_BOOTSTRAP_SERVERS``, a Docker
engine (testcontainers), then Apache Kafka's own jars from Maven Central run by
the local Java 17 in KRaft mode.
"""

from __future__ import annotations

from rescorer.devkafka.jars import KAFKA_VERSION, ensure_kafka_jars
from rescorer.devkafka.local import LocalKafka, LocalKafkaError
from rescorer.devkafka.provider import BrokerUnavailable, ProvidedBroker, provide_broker

__all__ = [
    "KAFKA_VERSION",
    "BrokerUnavailable",
    "LocalKafka",
    "LocalKafkaError",
    "ProvidedBroker",
    "ensure_kafka_jars",
    "provide_broker",
]
