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
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rescorer.cli import UsageError
from rescorer.common import float_in, parse_timestamp

_unit = float_in(0.0, 1.0, "a share")

DEFAULT_END = "2025-01-01T00:00:00Z"


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


def generate(
    customers: int, days: int, end: datetime, live_days: float, seed: int, seasonality: float,
    shift: Any,
) -> tuple[Any, Any]:  # fmt: skip
    """(events sorted by time over history and live period, truth)."""
    from offline.synthetic import synthetic_events

    total_days = days + max(1, int(live_days + 0.999))
    events, truth = synthetic_events(
        customers,
        end=end + timedelta(days=total_days - days),
        days=total_days,
        seed=seed,
        seasonality=seasonality,
        shift=shift,
    )
    return events.sort("occurred_at", maintain_order=True), truth


def event_bodies(frame: Any) -> Iterator[dict[str, Any]]:
    """Event dicts (CustomerEvent JSON) of a frame in the canonical columns."""
    for event_id, customer_id, kind, occurred_at, amount in frame.select(
        "event_id", "customer_id", "type", "occurred_at", "amount"
    ).iter_rows():
        body: dict[str, Any] = {
            "event_id": event_id,
            "customer_id": customer_id,
            "type": kind,
            "occurred_at": occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if amount is not None:
            body["amount"] = amount
        yield body


@dataclass
class LiveStream:
    """Paces live events onto the events topic; call `pump` as often as you like."""

    producer: Any
    topic: str
    bodies: Iterator[dict[str, Any]]
    start: datetime
    speedup: float
    rate: float
    malformed_rate: float = 0.0
    seed: int = 0
    sent: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    clock: datetime | None = None
    finished: bool = False
    _wall0: float = field(default_factory=time.monotonic)
    _pending: dict[str, Any] | None = None
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - simulation, not security

    def event_time(self) -> datetime:
        """Where simulated time stands now."""
        return self.start + timedelta(seconds=(time.monotonic() - self._wall0) * self.speedup)

    def pump(self) -> int:
        """Send every event that is due (and allowed by the rate); return how many."""
        from offline.synthetic import MALFORMED_KINDS, malformed

        now = self.event_time()
        budget = int(self.rate * (time.monotonic() - self._wall0)) - self.sent
        sent = 0
        while sent < budget:
            body = self._pending or next(self.bodies, None)
            self._pending = None
            if body is None:
                self.finished = True
                break
            at = datetime.fromisoformat(body["occurred_at"])
            if at > now:
                self._pending = body
                break
            if self.malformed_rate and self._rng.random() < self.malformed_rate:
                kind = MALFORMED_KINDS[self.malformed.total() % len(MALFORMED_KINDS)]
                key, value = malformed(body, kind)
                self.malformed[kind] += 1
            else:
                key, value = str(body["customer_id"]).encode(), json.dumps(body).encode()
            self.producer.send(self.topic, key=key, value=value)
            self.clock = at
            sent += 1
        self.sent += sent
        return sent


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
