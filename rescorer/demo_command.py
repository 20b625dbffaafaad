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
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

from rescorer.cli import UsageError
from rescorer.common import stop_process

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
            raise UsageError(f"demo exceeded --duration {self.limit:.0f}s before: {message}")
        print(f"[{self.elapsed:6.1f}s] {message}", flush=True)


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "rescorer", "worker", "--log-level", "info"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run(args: argparse.Namespace) -> int:
    """Run the demo; return 0 when every step worked."""
    import polars as pl
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from offline.kafka_io import publish_model, read_event_history
    from offline.registry import ModelRegistry
    from offline.report import write_report
    from offline.synthetic import BehaviourShift
    from offline.trainer import TrainConfig, train
    from rescorer.common import parse_timestamp, scrape_metrics
    from rescorer.demo_view import DemoView
    from rescorer.devkafka import provide_broker
    from rescorer.devkafka.local import free_port
    from rescorer.simulate_command import DEFAULT_END, LiveStream, event_bodies, generate
    from schemas.settings import RescorerSettings, TopicNames
    from streams.settings import WorkerSettings
    from streams.topics import ensure_topics

    if args.customers < 50:
        raise UsageError(f"--customers {args.customers}: at least 50 are needed")
    if args.duration < 60:
        raise UsageError(f"--duration {args.duration:g}: at least 60 seconds are needed")
    clock = Clock(args.duration)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("models", "worker-data"):  # each demo starts from v1 with fresh state
        shutil.rmtree(out / stale, ignore_errors=True)
    live_view = not args.plain and sys.stdout.isatty()
    with ExitStack() as stack:
        clock.step("providing a Kafka broker")
        broker = stack.enter_context(provide_broker())
        run_id = f"demo{os.getpid()}"
        topics = TopicNames(
            events=f"{run_id}-customer-events", changes=f"{run_id}-segment-changes",
            assignments=f"{run_id}-customer-segments", dead_letters=f"{run_id}-dlq",
            models=f"{run_id}-segment-models", retrain_requests=f"{run_id}-retrain-requests",
        )  # fmt: skip
        settings = RescorerSettings(kafka_bootstrap_servers=broker.bootstrap_servers, topics=topics)
        clock.step(f"broker ready at {broker.bootstrap_servers} ({broker.kind})")

        end = parse_timestamp(DEFAULT_END, "end")
        shift_at = end + timedelta(days=LIVE_DAYS / 2)
        shift = BehaviourShift(SHIFT_PERSONA, SHIFT_FACTOR, shift_at)
        events, truth = generate(args.customers, 365, end, LIVE_DAYS, 7, 0.3, shift)
        history = events.filter(pl.col("occurred_at") <= end)
        live = events.filter(pl.col("occurred_at") > end)
        clock.step(
            f"simulated {history.height} events for {args.customers} customers over a year, "
            f"and {live.height} more for {LIVE_DAYS:.0f} live days"
        )
        ensure_topics(WorkerSettings(**dict(settings), partitions=PARTITIONS))
        producer = KafkaProducer(acks="all", linger_ms=20, **settings.kafka_python_config())
        stack.callback(producer.close)
        for body in event_bodies(history):
            producer.send(topics.events, key=body["customer_id"].encode(), value=_json(body))
        producer.flush()
        clock.step(f"produced the history to {topics.events}")

        log = read_event_history(settings, max_reject_share=0.01)
        registry = ModelRegistry(out / "models")
        result = train(
            log, TrainConfig(version=registry.next_version(), bootstrap_resamples=5),
            registry.active(),
        )  # fmt: skip
        registry.save(result.model)
        registry.promote(result.model.version)
        page = write_report(result, log.rejections, out / "report")
        publish_model(settings, result.model)
        model = result.model
        clock.step(
            f"trained model v{model.version} (k={len(model.segments)}: "
            + ", ".join(s.name for s in model.segments)
            + f") from the topic and published it; report {page}"
        )

        metrics_port = free_port()
        env = {
            **os.environ,
            "RESCORER_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "RESCORER_TOPIC_EVENTS": topics.events,
            "RESCORER_TOPIC_CHANGES": topics.changes,
            "RESCORER_TOPIC_ASSIGNMENTS": topics.assignments,
            "RESCORER_TOPIC_DEAD_LETTERS": topics.dead_letters,
            "RESCORER_TOPIC_MODELS": topics.models,
            "RESCORER_TOPIC_RETRAIN_REQUESTS": topics.retrain_requests,
            "RESCORER_APP_ID": run_id,
            "RESCORER_PARTITIONS": str(PARTITIONS),
            "RESCORER_MODEL_DIR": str(out / "models"),
            "RESCORER_DATA_DIR": str(out / "worker-data"),
            "RESCORER_STANDBY_REPLICAS": "0",
            "RESCORER_METRICS_PORT": str(metrics_port),
            # A demo lasts minutes: judge drift often, after seconds rather than minutes,
            # and at a PSI its 60 shifted days reach (production default: 0.25).
            "RESCORER_DRIFT_INTERVAL_SECONDS": "2",
            "RESCORER_RETRAIN_PSI_SUSTAIN_SECONDS": "10",
            "RESCORER_RETRAIN_PSI": str(DEMO_RETRAIN_PSI),
        }
        worker_log = out / "worker.log"
        worker = _start_worker(env, worker_log)
        stack.callback(stop_process, worker)
        deadline = time.monotonic() + 60
        while "customers restored" not in worker_log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise UsageError(f"the worker did not start; see {worker_log}")
            time.sleep(0.2)
        clock.step(
            f"worker running (log {worker_log}), metrics at "
            f"http://127.0.0.1:{metrics_port}/metrics; it first catches up on the history"
        )

        buyers = history.filter(pl.col("type") == "purchase")["customer_id"].n_unique()
        view = DemoView(model, started=clock.started, live_start=end, expected_customers=buyers)
        consumer = KafkaConsumer(enable_auto_commit=False, **settings.kafka_python_config())
        stack.callback(consumer.close)
        parts = [
            TopicPartition(topic, p)
            for topic in (topics.changes, topics.assignments, topics.dead_letters)
            for p in range(PARTITIONS)
        ] + [TopicPartition(topics.retrain_requests, 0)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        handlers = {
            topics.changes: view.on_change,
            topics.assignments: view.on_assignment,
            topics.dead_letters: view.on_dead_letter,
            topics.retrain_requests: view.on_retrain_request,
        }
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        scraped = 0.0
        # What is left after the live traffic: draining outputs and, when the worker
        # asks for one, a retrain (about 10 s here).
        live_seconds = max(20.0, args.duration - clock.elapsed - TAIL_SECONDS)
        stream = LiveStream(
            producer, topics.events, event_bodies(live), end,
            speedup=LIVE_DAYS * 86_400 / live_seconds, rate=2000.0,
            malformed_rate=MALFORMED_RATE, seed=7,
        )  # fmt: skip
        clock.step(
            f"streaming {LIVE_DAYS:.0f} days of live traffic in {live_seconds:.0f}s; "
            f"{SHIFT_PERSONA} buys {SHIFT_FACTOR:.0%} as often from {shift_at:%Y-%m-%d}"
        )
        finish_at = time.monotonic() + live_seconds
        last_line = 0.0

        def tick(pump: bool = True) -> None:
            if pump:
                stream.pump()
            view.events_sent = history.height + stream.sent
            view.malformed_sent = stream.malformed.total()
            view.clock = stream.clock
            for tp, records in consumer.poll(timeout_ms=100).items():
                for record in records:
                    if record.value is not None:
                        handlers[tp.topic](record.value)
            nonlocal scraped
            if time.monotonic() - scraped > 1.0:
                scraped = time.monotonic()
                with suppress(OSError):
                    view.on_metrics(scrape_metrics(metrics_url))

        if live_view:
            from rich.live import Live

            with Live(view.render(0.0), refresh_per_second=4, transient=False) as screen:
                while time.monotonic() < finish_at and not stream.finished:
                    tick()
                    elapsed = max(1e-6, time.monotonic() - (finish_at - live_seconds))
                    screen.update(view.render(stream.sent / elapsed))
        else:
            while time.monotonic() < finish_at and not stream.finished:
                tick()
                if time.monotonic() - last_line > 5:
                    print(view.line(), flush=True)
                    last_line = time.monotonic()
        producer.flush()
        clock.step(f"live traffic done ({stream.sent} events); collecting the last outputs")
        drain_until = time.monotonic() + 5
        while time.monotonic() < drain_until:
            tick(pump=False)
        if not live_view:
            print(view.line(), flush=True)
        drift = view.drift()
        if worker.poll() is not None:
            raise UsageError(f"the worker stopped during the demo; see {worker_log}")
        versions = f"v{model.version} (trained on the history, published)"
        if view.retrain_requests and args.duration - clock.elapsed < RETRAIN_SECONDS:
            clock.step("the worker asked for a retrain; no time left for it in --duration")
        elif view.retrain_requests:
            clock.step(
                f"the worker asked for a retrain ({view.retrain_requests[0]}); "
                "running rescorer retrain --from-kafka"
            )
            retrained = subprocess.run(
                [sys.executable, "-m", "rescorer", "retrain", "--from-kafka",
                 "--bootstrap", "5", "--holdout-days", "0"],
                env=env, capture_output=True, text=True, check=False, timeout=600,
            )  # fmt: skip
            (out / "retrain.log").write_text(retrained.stdout + retrained.stderr)
            promoted = re.search(r"promoted v(\d+)", retrained.stdout)
            if promoted is None:
                reason = re.search(r"not promoted: (.*)", retrained.stdout)
                versions += "; retrained candidate not promoted: " + (
                    reason.group(1) if reason else f"exit {retrained.returncode}, see retrain.log"
                )
            else:
                switched = f"switched to model v{promoted.group(1)}"
                deadline = time.monotonic() + 20
                while switched not in worker_log.read_text(errors="replace"):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                in_use = switched in worker_log.read_text(errors="replace")
                versions += f" -> v{promoted.group(1)} (retrained on the request, promoted, " + (
                    "in use by the worker)" if in_use else "not yet picked up)"
                )
        clock.step("stopping the worker and the broker")

    from sklearn.metrics import adjusted_rand_score

    personas = dict(truth.select("customer_id", "persona").iter_rows())
    assigned = sorted(view.segment_of)
    ari = adjusted_rand_score(
        [personas.get(c, "?") for c in assigned], [view.segment_of[c] for c in assigned]
    )
    print("\nsummary")
    print(
        f"  events: {history.height} history + {stream.sent} live "
        f"({stream.malformed.total()} malformed, {view.dead_letters.total()} dead-lettered)"
    )
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(view.reasons.items())) or "none"
    print(f"  segment changes: {view.reasons.total()} ({reasons})")
    print(f"  model versions: {versions}")
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
    print(f"  report: {page}; worker log: {worker_log}")
    print(f"  metrics were served at http://127.0.0.1:{metrics_port}/metrics")
    print(f"  worker and broker stopped; total {clock.elapsed:.1f}s")
    return 0


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()
