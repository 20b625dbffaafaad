"""Feedback on misclassifications: validated, counted, the latest kept per customer.

The feedback topic is keyed by customer and has as many partitions as the
events topic, so Faust assigns each worker the feedback partitions of the
customers it owns and their records are local. Feedback is rare, so it rides
Faust's ordinary per-message agent. For each message:

- a bad one goes to the dead-letter topic with its reason;
- a good one is counted in ``rescorer_feedback_total{current_segment,
  proposed_segment}`` (the customer's segment now, "none" when unknown) and
  written to the compacted latest-feedback topic under the customer's key,
  which `rescorer retrain` reads to check a candidate against it.

Delivery is at least once: a redelivered message writes the same latest value
again and may be counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

import faust

from streams.decoding import Rejected, dead_letter, decode_feedback

if TYPE_CHECKING:
    from scoring.customer_record import CustomerRecord
    from streams.metrics import WorkerMetrics
    from streams.settings import WorkerSettings
    from streams.worker_state import WorkerState

log = logging.getLogger(__name__)


class Records(Protocol):
    """Where a customer's record is read (`StateTables`)."""

    def record(self, key: str, partition: int) -> CustomerRecord | None: ...


class Publisher(Protocol):
    """Where feedback's outputs are sent (`Delivery`)."""

    async def publish(self, topic: str, key: bytes, value: bytes) -> None: ...


def feedback_labels(
    current: int | None, proposed: int, name_of: Callable[[int], str | None]
) -> tuple[str, str]:
    """The (current_segment, proposed_segment) labels of one piece of feedback.

    Segments are named as the latest model that had them names them; one no
    model ever had keeps its id; a customer without a segment is "none".

    >>> feedback_labels(1, 2, {1: "Loyal"}.get)
    ('Loyal', '2')
    >>> feedback_labels(None, 1, {1: "Loyal"}.get)
    ('none', 'Loyal')
    """

    def label(segment: int) -> str:
        return name_of(segment) or str(segment)

    return ("none" if current is None else label(current)), label(proposed)


class Feedback:
    """What one feedback message does: dead-lettered, or counted and kept."""

    def __init__(
        self,
        settings: WorkerSettings,
        tables: Records,
        state: WorkerState,
        delivery: Publisher,
        metrics: WorkerMetrics,
    ) -> None:
        self.settings = settings
        self.tables = tables
        self.state = state
        self.delivery = delivery
        self.metrics = metrics

    async def take(self, key: bytes | None, value: bytes | None, partition: int,
                   offset: int) -> None:  # fmt: skip
        """Validate, count and keep one feedback message (or dead-letter it)."""
        topics = self.settings.topics
        decoded = decode_feedback(key, value)
        if isinstance(decoded, Rejected):
            letter = dead_letter(decoded, key, value, topics.feedback, partition, offset)
            await self.delivery.publish(
                topics.dead_letters, key or b"", letter.model_dump_json().encode()
            )
            self.metrics.rejected.labels(decoded.error_type).inc()
            log.info("feedback at %s/%d dead-lettered: %s", partition, offset, decoded.error)
            return
        record = self.tables.record(decoded.customer_id, partition)
        rescorer = self.state.rescorer
        current, proposed = feedback_labels(
            None if record is None else record.segment_id,
            decoded.proposed_segment_id,
            (lambda _: None) if rescorer is None else rescorer.segment_name,
        )
        self.metrics.feedback.labels(current, proposed).inc()
        await self.delivery.publish(
            topics.feedback_latest, decoded.customer_id.encode(), decoded.model_dump_json().encode()
        )


class FeedbackAgent:
    """The Faust agent on the feedback topic, handing each message to `Feedback`."""

    def __init__(self, app: faust.App, settings: WorkerSettings, feedback: Feedback) -> None:
        self.feedback = feedback
        self.topic = app.topic(
            settings.topics.feedback, key_type=bytes, value_type=bytes,
            key_serializer="raw", value_serializer="raw", partitions=settings.partitions,
        )  # fmt: skip
        app.agent(self.topic, name="segment-feedback")(self.run)

    async def run(self, stream: faust.StreamT[Any]) -> AsyncIterator[None]:
        """Take each feedback message in turn."""
        async for message in stream.events():
            await self.feedback.take(message.key, message.value, message.message.partition,
                                     message.message.offset)  # fmt: skip
            yield None
