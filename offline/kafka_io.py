"""The trainer's Kafka edge: models published, the latest feedback read.

(The event history is read by `offline.kafka_history`.)
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from offline.errors import KafkaUnavailable
from schemas.feedback import SegmentFeedback
from schemas.model import SegmentModel, sign_model
from schemas.settings import RescorerSettings

ACTIVE_MODEL_KEY = b"active"


def ensure_compacted_topic(settings: RescorerSettings, topic: str) -> None:
    """Create `topic` with ``cleanup.policy=compact`` unless it exists.

    Existence is checked first: under ACLs a client may write a topic it has
    no right to create, and Kafka refuses the create before it says "exists".
    """
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        if topic in admin.list_topics():
            return
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def signed(settings: RescorerSettings, model: SegmentModel) -> SegmentModel:
    """`model` signed with the configured signing key; unchanged when none is set."""
    key = settings.signing_key
    return model if key is None else sign_model(model, key)


def publish_model(settings: RescorerSettings, model: SegmentModel) -> None:
    """Send `model` as the active model on the compacted models topic.

    With a signing key configured the artifact is (re-)signed with it, so
    publishing an older version after a key rotation signs it with the new key.
    """
    model = signed(settings, model)
    ensure_compacted_topic(settings, settings.topics.models)
    producer = KafkaProducer(
        acks="all", max_request_size=8 * 1024 * 1024, **settings.kafka_python_config()
    )
    try:
        producer.send(
            settings.topics.models, key=ACTIVE_MODEL_KEY, value=model.model_dump_json().encode()
        ).get(timeout=30)
    finally:
        producer.close()


def open_consumer(settings: RescorerSettings, **options: Any) -> KafkaConsumer:
    """A kafka-python consumer without auto-commit; `KafkaUnavailable` when unreachable."""
    try:
        return KafkaConsumer(enable_auto_commit=False, **options, **settings.kafka_python_config())
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}"
        ) from exc


def read_latest_feedback(settings: RescorerSettings) -> list[SegmentFeedback]:
    """The latest feedback per customer, from the compacted latest-feedback topic.

    Read from the beginning to the end offsets seen at start; an absent topic is
    no feedback, and a record that does not validate is skipped (the worker
    wrote only validated ones).
    """
    topic = settings.topics.feedback_latest
    consumer = open_consumer(settings, group_id=None, consumer_timeout_ms=10_000)
    latest: dict[str, SegmentFeedback] = {}
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return []
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end = consumer.end_offsets(assigned)
        while any(consumer.position(tp) < off for tp, off in end.items()):
            for tp, messages in consumer.poll(timeout_ms=2000, max_records=50_000).items():
                for message in messages:
                    if message.offset >= end[tp] or message.value is None:
                        continue
                    try:
                        feedback = SegmentFeedback.model_validate_json(message.value)
                    except ValueError:
                        continue
                    latest[feedback.customer_id] = feedback
    finally:
        consumer.close()
    return list(latest.values())
