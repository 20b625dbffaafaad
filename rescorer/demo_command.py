"""``rescorer demo``: the end-to-end path that exists today, on a real broker.

Starts (or uses) a Kafka broker, produces a simulated event history to the
events topic, trains a baseline model from the topic, writes its report,
publishes it to the models topic and reads it back. Everything it started is
stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rescorer.cli import UsageError


def register(commands: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = commands.add_parser("demo", help="run the end-to-end demo on a local Kafka")
    parser.add_argument(
        "--duration",
        type=float,
        default=120.0,
        help="upper bound in seconds for the whole demo (default 120)",
    )
    parser.add_argument(
        "--customers", type=int, default=2000, help="simulated customers (default 2000)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("demo-output"),
        help="where the model registry and report go (default demo-output)",
    )
    parser.set_defaults(handler=run)


def _step(started: float, limit: float, message: str) -> None:
    elapsed = time.monotonic() - started
    if elapsed > limit:
        raise UsageError(f"demo exceeded --duration {limit:.0f}s before: {message}")
    print(f"[{elapsed:6.1f}s] {message}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the demo; return 0 when every step worked."""
    from kafka import KafkaConsumer, KafkaProducer

    from offline.kafka_io import publish_model, read_event_history
    from offline.registry import ModelRegistry
    from offline.report import write_report
    from offline.synthetic import synthetic_events
    from offline.trainer import TrainConfig, train
    from rescorer.devkafka import provide_broker
    from schemas import load_segment_model
    from schemas.settings import RescorerSettings, TopicNames

    if args.customers < 50:
        raise UsageError(f"--customers {args.customers}: at least 50 are needed")
    started = time.monotonic()
    with ExitStack() as stack:
        _step(started, args.duration, "providing a Kafka broker")
        broker = stack.enter_context(provide_broker())
        run_id = f"demo{os.getpid()}"
        topics = TopicNames(events=f"{run_id}-customer-events", models=f"{run_id}-segment-models")
        settings = RescorerSettings(kafka_bootstrap_servers=broker.bootstrap_servers, topics=topics)
        _step(started, args.duration, f"broker ready at {broker.bootstrap_servers} ({broker.kind})")

        events, truth = synthetic_events(args.customers, seed=7)
        _step(
            started,
            args.duration,
            f"simulated {events.height} events for {args.customers} customers over two years",
        )
        producer = KafkaProducer(acks="all", linger_ms=20, **settings.kafka_python_config())
        for row in events.with_columns(
            events["occurred_at"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        ).iter_rows(named=True):
            producer.send(topics.events, key=row["customer_id"].encode(), value=_json(row))
        producer.flush()
        producer.close()
        _step(started, args.duration, f"produced {events.height} events to {topics.events}")

        log = read_event_history(settings, max_reject_share=0.01)
        _step(started, args.duration, f"read back {log.frame.height} events; training")
        out = args.out
        registry = ModelRegistry(out / "models")
        result = train(log, TrainConfig(version=registry.next_version()), registry.active())
        registry.save(result.model)
        registry.promote(result.model.version)
        page = write_report(result, log.rejections, out / "report")
        publish_model(settings, result.model)
        consumer = KafkaConsumer(
            topics.models,
            auto_offset_reset="earliest",
            consumer_timeout_ms=10_000,
            **settings.kafka_python_config(),
        )
        published = [load_segment_model(m.value) for m in consumer]
        consumer.close()
        if not published or published[-1].version != result.model.version:
            raise UsageError("the published model did not come back from the models topic")
        _step(
            started,
            args.duration,
            f"published model v{result.model.version} to {topics.models} and read it back",
        )

    model = result.model
    v = model.validation
    print("\nsummary")
    print(f"  events produced and consumed: {log.frame.height}")
    print(
        f"  model v{model.version}: {model.n_customers} customers, k={len(model.segments)}, "
        f"silhouette {v.silhouette:.3f}, bootstrap ARI {v.bootstrap_ari:.3f}"
    )
    for segment in model.segments:
        p = segment.profile
        assert p is not None  # noqa: S101 - the trainer writes profiles
        print(
            f"    {segment.segment_id}  {segment.name:<20} {p.share:6.1%} of customers, "
            f"{p.revenue_share:6.1%} of revenue"
        )
    print(f"  ground-truth personas: {truth['persona'].n_unique()}")
    print(f"  report: {page}")
    print(f"  broker stopped; total {time.monotonic() - started:.1f}s")
    return 0


def _json(row: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in row.items() if v is not None}).encode()
