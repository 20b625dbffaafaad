"""``rescorer simulate``: synthetic customers, to files (history) or to Kafka (live).

History mode writes the events up to ``--end`` as fast as it can; live mode
produces the events after ``--end`` to the events topic, with event time
advancing ``--speedup`` times faster than the wall clock and at most
``--rate`` events per second. Both write every customer's ground-truth
persona (``--truth``), and ``--malformed-rate`` replaces that share of live
events with messages the worker must dead-letter.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from offline.simulator import DEFAULT_END, LiveStream, event_bodies, generate
from rescorer.common import float_in, parse_timestamp
from rescorer.errors import UsageError

_unit = float_in(0.0, 1.0, "a share")


def register(commands: Any) -> None:
    """Add the ``simulate`` subcommand."""
    parser = commands.add_parser("simulate", help="generate customer behaviour (files or Kafka)")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365, help="history length (default 365)")
    parser.add_argument("--end", default=DEFAULT_END, help="end of the history (ISO-8601)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seasonality", type=_unit, default=0.3, help="0 = flat year")
    parser.add_argument(
        "--shift",
        metavar="PERSONA:FACTOR@DAYS",
        help="from DAYS after --end (negative: before), PERSONA keeps FACTOR of its purchases",
    )
    parser.add_argument("--out", type=Path, help="history file (.parquet or .jsonl)")
    parser.add_argument("--truth", type=Path, help="ground truth CSV (customer_id, persona)")
    parser.add_argument("--kafka", action="store_true", help="stream the live part to Kafka")
    parser.add_argument(
        "--history-to-kafka",
        action="store_true",
        help="with --kafka: first produce the whole history to the events topic, unpaced",
    )
    parser.add_argument("--live-days", type=float, default=30.0, help="simulated live period")
    parser.add_argument("--speedup", type=float, default=86_400.0, help="event s per wall s")
    parser.add_argument("--rate", type=float, default=1000.0, help="live events per second, max")
    parser.add_argument("--malformed-rate", type=_unit, default=0.0)
    parser.set_defaults(handler=run)


def parse_shift(text: str, end: datetime) -> Any:
    """``PERSONA:FACTOR@DAYS`` to a `BehaviourShift` (days relative to the history end)."""
    from offline.synthetic import PERSONAS, BehaviourShift

    try:
        persona, rest = text.split(":", 1)
        factor, days = rest.split("@", 1)
        shift = BehaviourShift(persona, float(factor), end + timedelta(days=float(days)))
    except ValueError as exc:
        raise UsageError(f"--shift {text!r}: expected PERSONA:FACTOR@DAYS ({exc})") from exc
    names = [p.name for p in PERSONAS]
    if persona not in names:
        raise UsageError(f"--shift {text!r}: unknown persona; one of {', '.join(names)}")
    return shift


def run(args: argparse.Namespace) -> int:
    """Generate, then write the history and/or stream the live part."""
    if args.customers < 1 or args.days < 1:
        raise UsageError("--customers and --days must be at least 1")
    if args.history_to_kafka and not args.kafka:
        raise UsageError("--history-to-kafka needs --kafka")
    if not args.out and not args.kafka:
        raise UsageError("nothing to do: give --out FILE, --kafka, or both")
    if args.speedup <= 0 or args.rate <= 0 or args.live_days <= 0:
        raise UsageError("--speedup, --rate and --live-days must be positive")
    if args.out and args.out.suffix not in {".parquet", ".jsonl"}:
        raise UsageError(f"--out {args.out}: use a .parquet or .jsonl file name")
    end = parse_timestamp(args.end, "--end")
    shift = parse_shift(args.shift, end) if args.shift else None
    events, truth = generate(
        args.customers, args.days, end, args.live_days, args.seed, args.seasonality, shift
    )
    import polars as pl

    history = events.filter(pl.col("occurred_at") <= end)
    live = events.filter(pl.col("occurred_at") > end)
    if args.out:
        from offline.cdnow import write_events

        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_events(history, args.out)
        print(f"history: {history.height} events for {args.customers} customers -> {args.out}")
    if args.truth:
        args.truth.parent.mkdir(parents=True, exist_ok=True)
        truth.write_csv(args.truth)
        print(f"ground truth personas -> {args.truth}")
    if args.kafka:
        from kafka import KafkaProducer

        from rescorer.common import load_settings

        settings = load_settings()
        producer = KafkaProducer(linger_ms=20, **settings.kafka_python_config())
        if args.history_to_kafka:
            topic = settings.topics.events
            for n, body in enumerate(event_bodies(history), 1):
                producer.send(
                    topic, key=str(body["customer_id"]).encode(), value=json.dumps(body).encode()
                )
                if n % 50_000 == 0:
                    print(f"history: {n} of {history.height} events to {topic}", flush=True)
            producer.flush()
            print(f"history: {history.height} events to {topic}")
        stream = LiveStream(
            producer, settings.topics.events, event_bodies(live), end, args.speedup,
            args.rate, args.malformed_rate, args.seed,
        )  # fmt: skip
        try:
            while not stream.finished:
                stream.pump()
                time.sleep(0.05)
        finally:
            producer.flush()
            producer.close()
        print(
            f"live: {stream.sent} events to {settings.topics.events} "
            f"({stream.malformed.total()} malformed) up to {stream.clock or end:%Y-%m-%d %H:%M}"
        )
    return 0
