"""The retrain job's inbox: pending `RetrainRequest`s on their topic.

Requests are read from the group's committed offsets to the end offsets seen
at start, with the partitions assigned directly (no group membership, so no
rebalance wait); the offsets are committed under the group only once the job
has decided, so a crash mid-training leaves the requests pending.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from offline.errors import InputError
from offline.kafka_io import open_consumer
from schemas.retrain import RetrainRequest
from schemas.settings import RescorerSettings


@dataclass
class PendingRequests:
    """What was waiting, and how to mark it handled."""

    requests: list[RetrainRequest] = field(default_factory=list)
    invalid: int = 0
    _consumer: KafkaConsumer | None = None
    _end: dict[TopicPartition, int] = field(default_factory=dict)

    def acknowledge(self) -> None:
        """Commit past everything read, so the next run does not see it again."""
        if self._consumer is None:
            return
        if self._end:
            self._consumer.commit(
                {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self._end.items()}
            )
        self.close()

    def close(self) -> None:
        """Release the consumer without committing."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def read_pending(
    settings: RescorerSettings, group_id: str, timeout: float = 30.0
) -> PendingRequests:
    """Requests after the group's committed offsets, up to the current end."""
    topic = settings.topics.retrain_requests
    consumer = open_consumer(settings, group_id=group_id, auto_offset_reset="earliest")
    pending = PendingRequests(_consumer=consumer)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return pending
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        for tp in assigned:
            committed = consumer.committed(tp)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        pending._end = dict(consumer.end_offsets(assigned))
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end for tp, end in pending._end.items()):
            if time.monotonic() > deadline:
                raise InputError(f"timed out reading {topic} after {timeout:.0f}s")
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                for message in messages:
                    if message.offset >= pending._end[tp]:
                        continue
                    try:
                        pending.requests.append(RetrainRequest.model_validate_json(message.value))
                    except (ValidationError, ValueError, TypeError):
                        pending.invalid += 1
    except BaseException:
        pending.close()
        raise
    return pending
