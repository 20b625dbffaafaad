"""The demo's live period: pace events onto the topic, read what the worker emits, show it."""

from __future__ import annotations

import time
from contextlib import ExitStack, suppress
from datetime import datetime
from typing import TYPE_CHECKING

from rescorer.common import scrape_metrics

if TYPE_CHECKING:
    import polars as pl
    from kafka import KafkaConsumer, KafkaProducer

    from offline.simulator import LiveStream
    from rescorer.demo_view import DemoView
    from schemas.model import SegmentModel
    from schemas.settings import RescorerSettings

LIVE_RATE = 2000.0
"""Events per second the live stream sends at most."""


class LiveSession:
    """One live period: `open` it, `run` it for a while, `drain` what is still coming."""

    def __init__(
        self, settings: RescorerSettings, model: SegmentModel, history: pl.DataFrame,
        live: pl.DataFrame, live_start: datetime, producer: KafkaProducer, metrics_url: str,
        started: float, partitions: int, stack: ExitStack,
    ) -> None:  # fmt: skip
        import polars as pl

        from rescorer.demo_view import DemoView

        self.settings = settings
        self.live = live
        self.live_start = live_start
        self.producer = producer
        self.metrics_url = metrics_url
        self.partitions = partitions
        self.stack = stack
        self.history_events = history.height
        buyers = history.filter(pl.col("type") == "purchase")["customer_id"].n_unique()
        self.view: DemoView = DemoView(
            model, started=started, live_start=live_start, expected_customers=buyers
        )
        self._stream: LiveStream | None = None
        self._consumer: KafkaConsumer | None = None
        self._scraped = 0.0

    @property
    def stream(self) -> LiveStream:
        if self._stream is None:
            raise RuntimeError("the live session is not open")
        return self._stream

    def open(self, speedup: float, malformed_rate: float) -> None:
        """Read the outputs from their start; get the live events ready to send."""
        from kafka import KafkaConsumer, TopicPartition

        from offline.simulator import LiveStream, event_bodies

        topics = self.settings.topics
        consumer = KafkaConsumer(enable_auto_commit=False, **self.settings.kafka_python_config())
        self.stack.callback(consumer.close)
        parts = [
            TopicPartition(topic, p)
            for topic in (topics.changes, topics.assignments, topics.dead_letters)
            for p in range(self.partitions)
        ] + [TopicPartition(topics.retrain_requests, 0)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        self._consumer = consumer
        self._stream = LiveStream(
            self.producer, topics.events, event_bodies(self.live), self.live_start,
            speedup=speedup, rate=LIVE_RATE, malformed_rate=malformed_rate, seed=7,
        )  # fmt: skip

    def run(self, seconds: float, screen: bool) -> None:
        """Send the live traffic for `seconds` (or until it runs out), showing the outputs."""
        stream, view = self.stream, self.view
        began = time.monotonic()
        finish_at = began + seconds
        if screen:
            from rich.live import Live

            with Live(view.render(0.0), refresh_per_second=4, transient=False) as live:
                while time.monotonic() < finish_at and not stream.finished:
                    self.tick(pump=True)
                    live.update(view.render(stream.sent / max(1e-6, time.monotonic() - began)))
        else:
            last_line = 0.0
            while time.monotonic() < finish_at and not stream.finished:
                self.tick(pump=True)
                if time.monotonic() - last_line > 5:
                    print(view.line(), flush=True)
                    last_line = time.monotonic()
        self.producer.flush()

    def drain(self, seconds: float, screen: bool) -> None:
        """Read the outputs still coming for `seconds`, sending nothing more."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.tick(pump=False)
        if not screen:
            print(self.view.line(), flush=True)

    def tick(self, *, pump: bool) -> None:
        """One round: send what is due, show what came out, scrape the worker's metrics."""
        consumer, stream, view = self._consumer, self.stream, self.view
        assert consumer is not None  # noqa: S101 - set by open, as the stream is
        topics = self.settings.topics
        handlers = {
            topics.changes: view.on_change,
            topics.assignments: view.on_assignment,
            topics.dead_letters: view.on_dead_letter,
            topics.retrain_requests: view.on_retrain_request,
        }
        if pump:
            stream.pump()
        view.events_sent = self.history_events + stream.sent
        view.malformed_sent = stream.malformed.total()
        view.clock = stream.clock
        for tp, records in consumer.poll(timeout_ms=100).items():
            for record in records:
                if record.value is not None:
                    handlers[tp.topic](record.value)
        if time.monotonic() - self._scraped > 1.0:
            self._scraped = time.monotonic()
            with suppress(OSError):
                view.on_metrics(scrape_metrics(self.metrics_url))
