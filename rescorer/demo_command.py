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
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rescorer.common import scrape_metrics, stop_process
from rescorer.errors import RuntimeFailure, UsageError

if TYPE_CHECKING:
    import polars as pl
    from kafka import KafkaProducer

    from offline.publishing import Stored
    from offline.simulator import LiveStream
    from rescorer.demo_view import DemoView
    from schemas.model import SegmentModel
    from schemas.settings import RescorerSettings
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


@dataclass(frozen=True)
class Simulation:
    """The simulated year of history, the live period after it, and the personas."""

    history: pl.DataFrame
    live: pl.DataFrame
    truth: pl.DataFrame
    end: datetime
    """Where the history ends and the live period starts."""
    shift_at: datetime


@dataclass(frozen=True)
class RunningWorker:
    """The `rescorer worker` child: its process, environment, metrics and log."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    metrics_url: str
    log: Path


@dataclass(frozen=True)
class Live:
    """What the live period showed, and what was streamed."""

    view: DemoView
    stream: LiveStream


@dataclass
class Demo:
    """One demo run, step by step; each step returns what the next ones need."""

    customers: int
    duration: float
    out: Path
    live_view: bool
    clock: Clock
    stack: ExitStack
    run_id: str = field(default_factory=lambda: f"demo{os.getpid()}")
    versions: str = ""
    """The model versions the run went through, for the summary."""

    def provide_kafka(self) -> RescorerSettings:
        """A broker (the configured one, Docker, or the Maven-jar one) and this run's topics."""
        from rescorer.devkafka import provide_broker
        from schemas.settings import RescorerSettings, TopicNames

        self.clock.step("providing a Kafka broker")
        broker = self.stack.enter_context(provide_broker())
        r = self.run_id
        topics = TopicNames(
            events=f"{r}-customer-events", changes=f"{r}-segment-changes",
            band_changes=f"{r}-risk-band-changes",
            assignments=f"{r}-customer-segments", dead_letters=f"{r}-dlq",
            models=f"{r}-segment-models", retrain_requests=f"{r}-retrain-requests",
            feedback=f"{r}-segment-feedback", feedback_latest=f"{r}-segment-feedback-latest",
        )  # fmt: skip
        settings = RescorerSettings(kafka_bootstrap_servers=broker.bootstrap_servers, topics=topics)
        self.clock.step(f"broker ready at {broker.bootstrap_servers} ({broker.kind})")
        return settings

    def simulate(self) -> Simulation:
        """A year of history and the live period, with the behaviour shift halfway."""
        import polars as pl

        from offline.simulator import DEFAULT_END, generate
        from offline.synthetic import BehaviourShift
        from rescorer.common import parse_timestamp

        end = parse_timestamp(DEFAULT_END, "end")
        shift_at = end + timedelta(days=LIVE_DAYS / 2)
        shift = BehaviourShift(SHIFT_PERSONA, SHIFT_FACTOR, shift_at)
        events, truth = generate(self.customers, 365, end, LIVE_DAYS, 7, 0.3, shift)
        simulation = Simulation(
            events.filter(pl.col("occurred_at") <= end),
            events.filter(pl.col("occurred_at") > end),
            truth, end, shift_at,
        )  # fmt: skip
        self.clock.step(
            f"simulated {simulation.history.height} events for {self.customers} customers over "
            f"a year, and {simulation.live.height} more for {LIVE_DAYS:.0f} live days"
        )
        return simulation

    def produce_history(self, settings: RescorerSettings, history: pl.DataFrame) -> KafkaProducer:
        """Create the topics and produce the history to the events topic."""
        from kafka import KafkaProducer

        from offline.simulator import event_bodies
        from streams.topics import ensure_topics

        ensure_topics(worker_settings(settings, self.run_id, self.out, 0))
        producer = KafkaProducer(acks="all", linger_ms=20, **settings.kafka_python_config())
        self.stack.callback(producer.close)
        topic = settings.topics.events
        for body in event_bodies(history):
            producer.send(topic, key=body["customer_id"].encode(), value=_json(body))
        producer.flush()
        self.clock.step(f"produced the history to {topic}")
        return producer

    def train_and_publish(self, settings: RescorerSettings) -> Stored:
        """Train a baseline from the topic, then store, promote, report and publish it."""
        from offline.kafka_history import partition_topic
        from offline.publishing import promote, publish_active, store
        from offline.trainer import TrainConfig, train
        from schemas.registry import ModelRegistry

        registry = ModelRegistry(self.out / "models")
        with partition_topic(settings, max_reject_share=0.01) as log:
            result = train(
                log, TrainConfig(version=registry.next_version(), bootstrap_resamples=5),
                registry.active(),
            )  # fmt: skip
            stored = store(settings, registry, result, log.rejections, self.out / "report")
        promote(registry, stored.model, always=True)
        publish_active(settings, registry)
        model = stored.model
        self.versions = f"v{model.version} (trained on the history, published)"
        self.clock.step(
            f"trained model v{model.version} (k={len(model.segments)}: "
            + ", ".join(s.name for s in model.segments)
            + f") from the topic and published it; report {stored.report}"
        )
        return stored

    def start_worker(self, settings: RescorerSettings, model: SegmentModel) -> RunningWorker:
        """`rescorer worker` as a child; ready once its /metrics serves the model."""
        from rescorer.devkafka.local import free_port

        port = free_port()
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        chosen = worker_settings(settings, self.run_id, self.out, port, free_port())
        env = {**os.environ, **chosen.environment()}
        log = self.out / "worker.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "rescorer", "worker", "--log-level", "info"],
                env=env, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.stack.callback(stop_process, process)
        deadline = time.monotonic() + 60
        while model_version_served(metrics_url) != model.version:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeFailure(f"the worker did not start; see {log}")
            time.sleep(0.2)
        self.clock.step(
            f"worker running (log {log}), metrics at {metrics_url}; "
            "it first catches up on the history"
        )
        return RunningWorker(process, env, metrics_url, log)

    def stream_live(
        self, settings: RescorerSettings, model: SegmentModel, simulation: Simulation,
        producer: KafkaProducer, worker: RunningWorker,
    ) -> Live:  # fmt: skip
        """Pace the live period onto the events topic while showing the outputs."""
        from rescorer.demo_live import LiveSession

        session = LiveSession(
            settings, model, simulation.history, simulation.live, simulation.end, producer,
            worker.metrics_url, self.clock.started, PARTITIONS, self.stack,
        )  # fmt: skip
        # What is left after the live traffic: draining outputs and, when the worker
        # asks for one, a retrain (about 10 s here).
        live_seconds = max(20.0, self.duration - self.clock.elapsed - TAIL_SECONDS)
        session.open(LIVE_DAYS * 86_400 / live_seconds, MALFORMED_RATE)
        self.clock.step(
            f"streaming {LIVE_DAYS:.0f} days of live traffic in {live_seconds:.0f}s; "
            f"{SHIFT_PERSONA} buys {SHIFT_FACTOR:.0%} as often from {simulation.shift_at:%Y-%m-%d}"
        )
        session.run(live_seconds, self.live_view)
        self.clock.step(
            f"live traffic done ({session.stream.sent} events); collecting the last outputs"
        )
        session.drain(5.0, self.live_view)
        return Live(session.view, session.stream)

    def retrain_if_asked(self, view: DemoView, worker: RunningWorker) -> None:
        """When the worker raised a retrain request: retrain, and watch the worker switch."""
        from rescorer.retrain_command import Outcome

        if worker.process.poll() is not None:
            raise RuntimeFailure(f"the worker stopped during the demo; see {worker.log}")
        if not view.retrain_requests:
            return
        if self.duration - self.clock.elapsed < RETRAIN_SECONDS:
            self.clock.step("the worker asked for a retrain; no time left for it in --duration")
            return
        self.clock.step(
            f"the worker asked for a retrain ({view.retrain_requests[0]}); "
            "running rescorer retrain --from-kafka"
        )
        result = self.out / "retrain-result.json"
        result.unlink(missing_ok=True)
        retrained = subprocess.run(  # noqa: S603 - our own command and arguments
            [sys.executable, "-m", "rescorer", "retrain", "--from-kafka",
             "--bootstrap", "5", "--holdout-days", "0", "--result", str(result)],
            env=worker.env, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        (self.out / "retrain.log").write_text(retrained.stdout + retrained.stderr)
        if not result.exists():
            self.versions += f"; retrain did not train (exit {retrained.returncode}, retrain.log)"
            return
        outcome = Outcome.read(result)
        if not outcome.promoted:
            self.versions += "; retrained candidate not promoted: " + "; ".join(outcome.failures)
            return
        deadline = time.monotonic() + 20
        served = model_version_served(worker.metrics_url)
        while served != outcome.candidate and time.monotonic() < deadline:
            time.sleep(0.2)
            served = model_version_served(worker.metrics_url)
        self.versions += f" -> v{outcome.candidate} (retrained on the request, promoted, " + (
            "in use by the worker)" if served == outcome.candidate else "not yet picked up)"
        )

    def summary(
        self, live: Live, simulation: Simulation, stored: Stored, worker: RunningWorker
    ) -> None:
        """What happened, and how the segments compare with the simulated personas."""
        from sklearn.metrics import adjusted_rand_score

        view, stream = live.view, live.stream
        drift = view.drift()
        personas = dict(simulation.truth.select("customer_id", "persona").iter_rows())
        assigned = sorted(view.segment_of)
        ari = adjusted_rand_score(
            [personas.get(c, "?") for c in assigned], [view.segment_of[c] for c in assigned]
        )
        print("\nsummary")
        print(
            f"  events: {simulation.history.height} history + {stream.sent} live "
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
        print(f"  report: {stored.report}; worker log: {worker.log}")
        print(f"  metrics were served at {worker.metrics_url}")
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
        simulation = demo.simulate()
        producer = demo.produce_history(settings, simulation.history)
        stored = demo.train_and_publish(settings)
        worker = demo.start_worker(settings, stored.model)
        live = demo.stream_live(settings, stored.model, simulation, producer, worker)
        demo.retrain_if_asked(live.view, worker)
        demo.clock.step("stopping the worker and the broker")
    demo.summary(live, simulation, stored, worker)
    return 0


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
