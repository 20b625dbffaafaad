"""``rescorer demo``: the whole product on a local Kafka, in one bounded command.

It starts (or uses) a broker, simulates a year of history for N customers,
produces it, trains a baseline model from the topic and publishes it, starts
`rescorer worker`, then streams live traffic with a behaviour shift halfway
(the most valuable persona buys less) while showing segment populations, the
latest changes, drift and throughput. Everything it started is stopped on
exit, Ctrl-C included; it ends with a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rescorer.common import scrape_metrics, stop_process
from rescorer.errors import RuntimeFailure, UsageError

if TYPE_CHECKING:
    import polars as pl
    from kafka import KafkaConsumer, KafkaProducer

    from offline.simulator import LiveStream
    from rescorer.demo_view import DemoView
    from schemas.model import SegmentModel
    from schemas.settings import RescorerSettings, TopicNames
    from streams.settings import WorkerSettings

LIVE_DAYS = 120.0
SHIFT_PERSONA = "high_value_loyal"
SHIFT_FACTOR = 0.2
MALFORMED_RATE = 0.01
PARTITIONS = 4
DEMO_RETRAIN_PSI = 0.1
TAIL_SECONDS = 40.0
RETRAIN_SECONDS = 25.0


def register(commands: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = commands.add_parser("demo", help="run the end-to-end demo on a local Kafka")
    parser.add_argument(
        "--duration", type=float, default=120.0, help="upper bound in seconds (default 120)"
    )
    parser.add_argument("--customers", type=int, default=2000, help="simulated customers")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("demo-output"),
        help="report and logs go here; its models/ and worker-data/ are replaced each run",
    )
    parser.add_argument(
        "--plain", action="store_true", help="progress lines instead of the live view"
    )
    parser.set_defaults(handler=run)


class Clock:
    """Elapsed time and the demo's budget."""

    def __init__(self, limit: float) -> None:
        self.started = time.monotonic()
        self.limit = limit

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, message: str) -> None:
        if self.elapsed > self.limit:
            raise RuntimeFailure(f"demo exceeded --duration {self.limit:.0f}s before: {message}")
        print(f"[{self.elapsed:6.1f}s] {message}", flush=True)


def worker_settings(
    settings: RescorerSettings, run_id: str, out: Path, metrics_port: int, web_port: int = 0
) -> WorkerSettings:
    """The demo worker's settings: this run's topics, directories and a demo's tempo."""
    from streams.settings import WorkerSettings

    return WorkerSettings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        topics=settings.topics,
        app_id=run_id,
        partitions=PARTITIONS,
        model_dir=out / "models",
        data_dir=out / "worker-data",
        standby_replicas=0,
        metrics_port=metrics_port,
        web_port=web_port,
        web_host="127.0.0.1",
        # A demo lasts minutes: judge drift often, after seconds rather than minutes,
        # and at a PSI its 60 shifted days reach (production default: 0.25).
        drift_interval_seconds=2.0,
        retrain_psi_sustain_seconds=10.0,
        retrain_psi=DEMO_RETRAIN_PSI,
    )


def model_version_served(metrics_url: str) -> int | None:
    """The model version a worker reports on /metrics, None before it answers."""
    try:
        version = scrape_metrics(metrics_url).get("rescorer_model_version")
    except OSError:
        return None
    return int(version) if version else None


@dataclass
class Demo:
    """One demo run, step by step; `run` calls the steps in order."""

    customers: int
    duration: float
    out: Path
    live_view: bool
    clock: Clock
    stack: ExitStack
    run_id: str = field(default_factory=lambda: f"demo{os.getpid()}")
    settings: RescorerSettings | None = None
    history: pl.DataFrame | None = None
    live: pl.DataFrame | None = None
    truth: pl.DataFrame | None = None
    shift_at: datetime | None = None
    end: datetime | None = None
    model: SegmentModel | None = None
    report: Path | None = None
    producer: KafkaProducer | None = None
    worker: subprocess.Popen[bytes] | None = None
    worker_env: dict[str, str] = field(default_factory=dict)
    metrics_url: str = ""
    stream: LiveStream | None = None
    view: DemoView | None = None
    versions: str = ""

    @property
    def worker_log(self) -> Path:
        return self.out / "worker.log"

    def provide_kafka(self) -> RescorerSettings:
        """A broker (the configured one, Docker, or the Maven-jar one) and this run's topics."""
        from rescorer.devkafka import provide_broker
        from schemas.settings import RescorerSettings, TopicNames

        self.clock.step("providing a Kafka broker")
        broker = self.stack.enter_context(provide_broker())
        r = self.run_id
        topics = TopicNames(
            events=f"{r}-customer-events", changes=f"{r}-segment-changes",
            assignments=f"{r}-customer-segments", dead_letters=f"{r}-dlq",
            models=f"{r}-segment-models", retrain_requests=f"{r}-retrain-requests",
            feedback=f"{r}-segment-feedback", feedback_latest=f"{r}-segment-feedback-latest",
        )  # fmt: skip
        self.settings = RescorerSettings(
            kafka_bootstrap_servers=broker.bootstrap_servers, topics=topics
        )
        self.clock.step(f"broker ready at {broker.bootstrap_servers} ({broker.kind})")
        return self.settings

    def simulate(self) -> None:
        """A year of history and the live period, with the behaviour shift halfway."""
        import polars as pl

        from offline.simulator import DEFAULT_END, generate
        from offline.synthetic import BehaviourShift
        from rescorer.common import parse_timestamp

        self.end = end = parse_timestamp(DEFAULT_END, "end")
        self.shift_at = end + timedelta(days=LIVE_DAYS / 2)
        shift = BehaviourShift(SHIFT_PERSONA, SHIFT_FACTOR, self.shift_at)
        events, self.truth = generate(self.customers, 365, end, LIVE_DAYS, 7, 0.3, shift)
        self.history = events.filter(pl.col("occurred_at") <= end)
        self.live = events.filter(pl.col("occurred_at") > end)
        self.clock.step(
            f"simulated {self.history.height} events for {self.customers} customers over a "
            f"year, and {self.live.height} more for {LIVE_DAYS:.0f} live days"
        )

    def produce_history(self, settings: RescorerSettings, history: pl.DataFrame) -> None:
        """Create the topics and produce the history to the events topic."""
        from kafka import KafkaProducer

        from offline.simulator import event_bodies
        from streams.topics import ensure_topics

        ensure_topics(worker_settings(settings, self.run_id, self.out, 0))
        producer = KafkaProducer(acks="all", linger_ms=20, **settings.kafka_python_config())
        self.stack.callback(producer.close)
        self.producer = producer
        topic = settings.topics.events
        for body in event_bodies(history):
            producer.send(topic, key=body["customer_id"].encode(), value=_json(body))
        producer.flush()
        self.clock.step(f"produced the history to {topic}")

    def train_and_publish(self, settings: RescorerSettings) -> SegmentModel:
        """Train a baseline from the topic, store, promote, report and publish it."""
        from offline.kafka_io import publish_model, read_event_history
        from offline.report import write_report
        from offline.trainer import TrainConfig, train
        from schemas.registry import ModelRegistry

        log = read_event_history(settings, max_reject_share=0.01)
        registry = ModelRegistry(self.out / "models")
        result = train(
            log, TrainConfig(version=registry.next_version(), bootstrap_resamples=5),
            registry.active(),
        )  # fmt: skip
        registry.save(result.model)
        registry.promote(result.model.version)
        self.report = write_report(result, log.rejections, self.out / "report")
        publish_model(settings, result.model)
        self.model = model = result.model
        self.versions = f"v{model.version} (trained on the history, published)"
        self.clock.step(
            f"trained model v{model.version} (k={len(model.segments)}: "
            + ", ".join(s.name for s in model.segments)
            + f") from the topic and published it; report {self.report}"
        )
        return model

    def start_worker(self, settings: RescorerSettings, model: SegmentModel) -> None:
        """`rescorer worker` as a child; ready once its /metrics serves the model."""
        from rescorer.devkafka.local import free_port

        port = free_port()
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        chosen = worker_settings(settings, self.run_id, self.out, port, free_port())
        self.worker_env = {**os.environ, **chosen.environment()}
        with self.worker_log.open("wb") as log:
            self.worker = worker = subprocess.Popen(
                [sys.executable, "-m", "rescorer", "worker", "--log-level", "info"],
                env=self.worker_env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.stack.callback(stop_process, worker)
        deadline = time.monotonic() + 60
        while model_version_served(self.metrics_url) != model.version:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeFailure(f"the worker did not start; see {self.worker_log}")
            time.sleep(0.2)
        self.clock.step(
            f"worker running (log {self.worker_log}), metrics at {self.metrics_url}; "
            "it first catches up on the history"
        )

    def stream_live(self, settings: RescorerSettings, model: SegmentModel) -> None:
        """Pace the live period onto the events topic while showing the outputs."""
        import polars as pl
        from kafka import KafkaConsumer, TopicPartition

        from offline.simulator import LiveStream, event_bodies
        from rescorer.demo_view import DemoView

        # The steps run in order: simulate and produce_history set these.
        assert self.history is not None  # noqa: S101
        assert self.live is not None  # noqa: S101
        assert self.end is not None  # noqa: S101
        assert self.producer is not None  # noqa: S101
        topics = settings.topics
        buyers = self.history.filter(pl.col("type") == "purchase")["customer_id"].n_unique()
        self.view = view = DemoView(
            model, started=self.clock.started, live_start=self.end, expected_customers=buyers
        )
        consumer = KafkaConsumer(enable_auto_commit=False, **settings.kafka_python_config())
        self.stack.callback(consumer.close)
        parts = [
            TopicPartition(topic, p)
            for topic in (topics.changes, topics.assignments, topics.dead_letters)
            for p in range(PARTITIONS)
        ] + [TopicPartition(topics.retrain_requests, 0)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        # What is left after the live traffic: draining outputs and, when the worker
        # asks for one, a retrain (about 10 s here).
        live_seconds = max(20.0, self.duration - self.clock.elapsed - TAIL_SECONDS)
        self.stream = stream = LiveStream(
            self.producer, topics.events, event_bodies(self.live), self.end,
            speedup=LIVE_DAYS * 86_400 / live_seconds, rate=2000.0,
            malformed_rate=MALFORMED_RATE, seed=7,
        )  # fmt: skip
        self.clock.step(
            f"streaming {LIVE_DAYS:.0f} days of live traffic in {live_seconds:.0f}s; "
            f"{SHIFT_PERSONA} buys {SHIFT_FACTOR:.0%} as often from {self.shift_at:%Y-%m-%d}"
        )
        tick = self._ticker(consumer, topics, view, stream, self.history.height)
        finish_at = time.monotonic() + live_seconds
        if self.live_view:
            from rich.live import Live

            with Live(view.render(0.0), refresh_per_second=4, transient=False) as screen:
                while time.monotonic() < finish_at and not stream.finished:
                    tick(True)
                    elapsed = max(1e-6, time.monotonic() - (finish_at - live_seconds))
                    screen.update(view.render(stream.sent / elapsed))
        else:
            last_line = 0.0
            while time.monotonic() < finish_at and not stream.finished:
                tick(True)
                if time.monotonic() - last_line > 5:
                    print(view.line(), flush=True)
                    last_line = time.monotonic()
        self.producer.flush()
        self.clock.step(f"live traffic done ({stream.sent} events); collecting the last outputs")
        drain_until = time.monotonic() + 5
        while time.monotonic() < drain_until:
            tick(False)
        if not self.live_view:
            print(view.line(), flush=True)

    def _ticker(
        self, consumer: KafkaConsumer, topics: TopicNames, view: DemoView, stream: LiveStream,
        history_events: int,
    ) -> Callable[[bool], None]:  # fmt: skip
        """One round of the live loop: send what is due, show what came out, scrape."""
        handlers = {
            topics.changes: view.on_change,
            topics.assignments: view.on_assignment,
            topics.dead_letters: view.on_dead_letter,
            topics.retrain_requests: view.on_retrain_request,
        }
        scraped = [0.0]

        def tick(pump: bool) -> None:
            if pump:
                stream.pump()
            view.events_sent = history_events + stream.sent
            view.malformed_sent = stream.malformed.total()
            view.clock = stream.clock
            for tp, records in consumer.poll(timeout_ms=100).items():
                for record in records:
                    if record.value is not None:
                        handlers[tp.topic](record.value)
            if time.monotonic() - scraped[0] > 1.0:
                scraped[0] = time.monotonic()
                with suppress(OSError):
                    view.on_metrics(scrape_metrics(self.metrics_url))

        return tick

    def retrain_if_asked(self, view: DemoView) -> None:
        """When the worker raised a retrain request: retrain, and watch the worker switch."""
        if self.worker is not None and self.worker.poll() is not None:
            raise RuntimeFailure(f"the worker stopped during the demo; see {self.worker_log}")
        if not view.retrain_requests:
            return
        if self.duration - self.clock.elapsed < RETRAIN_SECONDS:
            self.clock.step("the worker asked for a retrain; no time left for it in --duration")
            return
        self.clock.step(
            f"the worker asked for a retrain ({view.retrain_requests[0]}); "
            "running rescorer retrain --from-kafka"
        )
        retrained = subprocess.run(
            [sys.executable, "-m", "rescorer", "retrain", "--from-kafka",
             "--bootstrap", "5", "--holdout-days", "0"],
            env=self.worker_env, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        (self.out / "retrain.log").write_text(retrained.stdout + retrained.stderr)
        promoted = re.search(r"promoted v(\d+)", retrained.stdout)
        if promoted is None:
            reason = re.search(r"not promoted: (.*)", retrained.stdout)
            self.versions += "; retrained candidate not promoted: " + (
                reason.group(1) if reason else f"exit {retrained.returncode}, see retrain.log"
            )
            return
        version = int(promoted.group(1))
        deadline = time.monotonic() + 20
        while model_version_served(self.metrics_url) != version and time.monotonic() < deadline:
            time.sleep(0.2)
        in_use = model_version_served(self.metrics_url) == version
        self.versions += f" -> v{version} (retrained on the request, promoted, " + (
            "in use by the worker)" if in_use else "not yet picked up)"
        )

    def summary(self, view: DemoView, stream: LiveStream) -> None:
        """What happened, and how the segments compare with the simulated personas."""
        from sklearn.metrics import adjusted_rand_score

        assert self.truth is not None  # noqa: S101
        assert self.history is not None  # noqa: S101
        drift = view.drift()
        personas = dict(self.truth.select("customer_id", "persona").iter_rows())
        assigned = sorted(view.segment_of)
        ari = adjusted_rand_score(
            [personas.get(c, "?") for c in assigned], [view.segment_of[c] for c in assigned]
        )
        print("\nsummary")
        print(
            f"  events: {self.history.height} history + {stream.sent} live "
            f"({stream.malformed.total()} malformed, {view.dead_letters.total()} dead-lettered)"
        )
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(view.reasons.items())) or "none"
        print(f"  segment changes: {view.reasons.total()} ({reasons})")
        print(f"  model versions: {self.versions}")
        for name, count, share in view.populations():
            print(f"    {name:<20} {count:>6} customers {share:6.1%}")
        print(
            "  drift (worker PSI now / peak): "
            + (", ".join(f"{n} {v:.3f}/{view.psi_peak.get(n, v):.3f}" for n, v in drift.items())
               or "not measured")
            + f"; distance-drift detections: {view.detections}"
        )  # fmt: skip
        print(
            f"  retrain requests: {len(view.retrain_requests)}"
            + (f" ({'; '.join(view.retrain_requests)})" if view.retrain_requests else "")
        )
        print(f"  segments vs ground-truth personas: ARI {ari:.3f} over {len(assigned)} customers")
        print(f"  report: {self.report}; worker log: {self.worker_log}")
        print(f"  metrics were served at {self.metrics_url}")
        print(f"  worker and broker stopped; total {self.clock.elapsed:.1f}s")


def run(args: argparse.Namespace) -> int:
    """Run the demo; return 0 when every step worked."""
    if args.customers < 50:
        raise UsageError(f"--customers {args.customers}: at least 50 are needed")
    if args.duration < 60:
        raise UsageError(f"--duration {args.duration:g}: at least 60 seconds are needed")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("models", "worker-data"):  # each demo starts from v1 with fresh state
        shutil.rmtree(out / stale, ignore_errors=True)
    with ExitStack() as stack:
        demo = Demo(
            args.customers, args.duration, out, not args.plain and sys.stdout.isatty(),
            Clock(args.duration), stack,
        )  # fmt: skip
        settings = demo.provide_kafka()
        demo.simulate()
        assert demo.history is not None  # noqa: S101 - simulate sets it
        demo.produce_history(settings, demo.history)
        model = demo.train_and_publish(settings)
        demo.start_worker(settings, model)
        demo.stream_live(settings, model)
        assert demo.view is not None  # noqa: S101 - stream_live sets both
        assert demo.stream is not None  # noqa: S101
        demo.retrain_if_asked(demo.view)
        demo.clock.step("stopping the worker and the broker")
    demo.summary(demo.view, demo.stream)
    return 0


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
