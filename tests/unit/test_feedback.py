"""The feedback decisions: a bad message is dead-lettered with its reason, a good
one counted under the customer's segment now and kept as the latest.

`streams.feedback.Feedback` over fakes of our own interfaces (a record source, a
publisher); the Faust agent around it is exercised on the real broker in
``tests/integration/test_feedback.py``.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from schemas.dead_letter import DeadLetter
from streams.feedback import Feedback
from streams.metrics import WorkerMetrics
from streams.settings import WorkerSettings

FEEDBACK = {
    "customer_id": "c1",
    "proposed_segment_id": 2,
    "given_by": "crm-team",
    "given_at": "2025-02-01T09:00:00Z",
}


class Published:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append((topic, key, value))


class Records:
    def __init__(self, segments: dict[tuple[str, int], int | None]) -> None:
        self.segments = segments
        self.asked: list[tuple[str, int]] = []

    def record(self, key: str, partition: int) -> Any:
        self.asked.append((key, partition))
        if (key, partition) not in self.segments:
            return None
        return SimpleNamespace(segment_id=self.segments[(key, partition)])


def names(mapping: dict[int, str]) -> Any:
    return SimpleNamespace(rescorer=SimpleNamespace(segment_name=mapping.get))


def take(
    key: bytes | None, value: bytes | None, records: Records, state: Any
) -> tuple[Published, WorkerMetrics, WorkerSettings]:
    settings = WorkerSettings()
    sent, metrics = Published(), WorkerMetrics()
    feedback = Feedback(settings, records, state, sent, metrics)
    asyncio.run(feedback.take(key, value, 3, 41))
    return sent, metrics, settings


def counted(metrics: WorkerMetrics, current: str, proposed: str) -> float:
    labels = {"current_segment": current, "proposed_segment": proposed}
    return metrics.registry.get_sample_value("rescorer_feedback_total", labels) or 0.0


def test_good_feedback_is_counted_under_the_segment_now_and_kept_as_the_latest() -> None:
    records = Records({("c1", 3): 1})
    sent, metrics, settings = take(
        b"c1", json.dumps(FEEDBACK).encode(), records, names({1: "Loyal", 2: "At risk"})
    )
    assert records.asked == [("c1", 3)]  # the record of the message's own partition
    assert counted(metrics, "Loyal", "At risk") == 1.0
    [(topic, key, value)] = sent.sent
    assert (topic, key) == (settings.topics.feedback_latest, b"c1")
    assert json.loads(value)["proposed_segment_id"] == 2


def test_a_customer_without_a_record_or_model_is_counted_as_none_with_the_id() -> None:
    sent, metrics, settings = take(
        b"c1", json.dumps(FEEDBACK).encode(), Records({}), SimpleNamespace(rescorer=None)
    )
    assert counted(metrics, "none", "2") == 1.0
    assert [topic for topic, _, _ in sent.sent] == [settings.topics.feedback_latest]


def test_a_customer_not_yet_assigned_counts_as_none() -> None:
    sent, metrics, settings = take(
        b"c1", json.dumps(FEEDBACK).encode(), Records({("c1", 3): None}), names({2: "At risk"})
    )
    assert counted(metrics, "none", "At risk") == 1.0
    assert [topic for topic, _, _ in sent.sent] == [settings.topics.feedback_latest]


def test_bad_feedback_is_dead_lettered_with_its_reason_counted_and_not_kept() -> None:
    body = json.dumps({**FEEDBACK, "customer_id": "c2"}).encode()  # key says c1
    records = Records({("c1", 3): 1})
    sent, metrics, settings = take(b"c1", body, records, names({1: "Loyal"}))
    assert records.asked == []
    [(topic, key, value)] = sent.sent
    assert (topic, key) == (settings.topics.dead_letters, b"c1")
    letter = DeadLetter.model_validate_json(value)
    assert (letter.topic, letter.partition, letter.offset) == (settings.topics.feedback, 3, 41)
    assert letter.payload == body
    assert "differs from customer_id" in letter.error
    reason = {"reason": letter.error_type}
    assert metrics.registry.get_sample_value("rescorer_events_rejected_total", reason) == 1.0
    assert counted(metrics, "Loyal", "2") == 0.0


def test_feedback_without_a_key_is_dead_lettered_under_an_empty_key() -> None:
    sent, _, settings = take(None, json.dumps(FEEDBACK).encode(), Records({}), names({}))
    [(topic, key, value)] = sent.sent
    assert (topic, key) == (settings.topics.dead_letters, b"")
    assert DeadLetter.model_validate_json(value).error_type == "missing_key"
