"""Create the worker's topics before it starts (the edge, kafka-python admin)."""

from __future__ import annotations

import contextlib

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.settings import WorkerSettings
from streams.state.tables import TABLES, changelog_topic

COMPACT = {"cleanup.policy": "compact"}


class TopicMismatch(RuntimeError):
    """An existing topic cannot serve the worker as configured."""


def wanted_topics(settings: WorkerSettings) -> list[NewTopic]:
    """Every topic the worker reads or writes, as it creates them.

    Keyed topics have ``settings.partitions`` partitions (state is
    co-partitioned with input); the latest-value topics are compacted; models
    and retrain requests are one ordered partition, and models may be large.
    """
    topics = settings.topics
    n, rf = settings.partitions, settings.replication_factor
    return [
        NewTopic(topics.events, n, rf),
        NewTopic(topics.changes, n, rf),
        NewTopic(topics.band_changes, n, rf),
        NewTopic(topics.assignments, n, rf, topic_configs=COMPACT),
        NewTopic(topics.dead_letters, n, rf),
        NewTopic(topics.models, 1, rf, topic_configs={**COMPACT, "max.message.bytes": "8388608"}),
        NewTopic(topics.retrain_requests, 1, rf),
        NewTopic(topics.feedback, n, rf),
        NewTopic(topics.feedback_latest, n, rf, topic_configs=COMPACT),
        # The tables' changelogs exist before the first assignment: Faust's leader creates
        # them itself at start, and an assignment made before the consumer's metadata
        # knew one left that table without its partitions while the events were taken.
        *(
            NewTopic(changelog_topic(settings.app_id, table), n, rf, topic_configs=COMPACT)
            for table in TABLES
        ),
    ]


def ensure_topics(settings: WorkerSettings) -> None:
    """Create missing topics; refuse an events topic whose partition count differs.

    The events topic, the outputs and Faust's changelogs must all have
    ``settings.partitions`` partitions: state is co-partitioned with input.
    """
    topics, n = settings.topics, settings.partitions
    wanted = wanted_topics(settings)
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        for topic in missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([topic])
        if topics.events in existing:
            (described,) = admin.describe_topics([topics.events])
            have = len(described["partitions"])
            if have != n:
                raise TopicMismatch(
                    f"topic {topics.events} has {have} partitions but RESCORER_PARTITIONS is {n}"
                )
    finally:
        admin.close()
