"""``rescorer replay``: the stream core over event files, without Kafka."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from rescorer.common import margin_arg, rate_arg
from rescorer.errors import UsageError
from schemas.events import CustomerEvent, EventType
from schemas.segments import RiskBandChange, SegmentAssignment, SegmentChange
from scoring.customer_record import from_epoch_micros


def register(commands: Any) -> None:
    """Add the ``replay`` subcommand."""
    parser = commands.add_parser(
        "replay", help="run the streaming core over event files (backtests, parity checks)"
    )
    parser.add_argument("--events", nargs="+", required=True, metavar="PATH")
    parser.add_argument(
        "--model-dir", type=Path, required=True, help="registry whose active model is used"
    )
    parser.add_argument("--out", type=Path, default=Path("replay-output"), metavar="DIR")
    parser.add_argument(
        "--margin", type=margin_arg, default=0.10, help="hysteresis margin (default 0.10)"
    )
    parser.add_argument(
        "--learning-rate",
        type=rate_arg,
        default=None,
        help="online centroid learning rate (default: the worker's default; 0 = frozen)",
    )
    parser.add_argument(
        "--sweep-period-hours",
        type=float,
        default=24.0,
        help="re-score every customer at least this often in event time (default 24)",
    )
    parser.add_argument(
        "--recheck-days",
        type=float,
        default=30.0,
        help="re-score a customer far from any boundary at least this often (default 30)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=500, help="events per batch, as the worker takes them"
    )
    parser.add_argument(
        "--max-invalid-share", type=float, default=0.01, help="stop above this share of bad rows"
    )
    parser.add_argument(
        "--work-dir", help="where the events are split and sorted on disk (default: a temp dir)"
    )
    parser.set_defaults(handler=run)


def _events(rows: Iterable[Sequence[Any]], counted: list[int]) -> Iterator[CustomerEvent]:
    """Events from `offline.event_time_order` rows (key first), counted in `counted[0]`."""
    for at, _file, _row, event_id, customer_id, kind, amount in rows:
        counted[0] += 1
        yield CustomerEvent.model_construct(
            event_id=event_id,
            customer_id=customer_id,
            type=EventType(kind),
            # With datetime's own UTC, not polars' ZoneInfo("UTC"): every offset the
            # core asks for is then a constant.
            occurred_at=from_epoch_micros(at),
            amount=amount,
        )


_BAND_ORDER = ("low", "medium", "high")


class _FileSink:
    """A replay's outputs written to JSON Lines files as they come, and tallied."""

    def __init__(self, out: Path) -> None:
        self._files = [
            (out / name).open("w") for name in ("changes.jsonl", "band-changes.jsonl",
                                               "assignments.jsonl")
        ]  # fmt: skip
        self.reasons: Counter[str] = Counter()
        self.band_kinds: Counter[str] = Counter()
        self.assigned = 0

    def __enter__(self) -> _FileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._files:
            handle.close()

    def changes(self, changes: Sequence[SegmentChange]) -> None:
        self._files[0].writelines(c.model_dump_json() + "\n" for c in changes)
        self.reasons.update(c.reason.value for c in changes)

    def band_changes(self, crossings: Sequence[RiskBandChange]) -> None:
        self._files[1].writelines(c.model_dump_json() + "\n" for c in crossings)
        self.band_kinds.update(
            "first" if c.previous_band is None
            else "up" if _BAND_ORDER.index(c.band) > _BAND_ORDER.index(c.previous_band)
            else "down"
            for c in crossings
        )  # fmt: skip

    def assignments(self, assignments: Sequence[SegmentAssignment]) -> None:
        self._files[2].writelines(a.model_dump_json() + "\n" for a in assignments)
        self.assigned += len(assignments)


def run(args: argparse.Namespace) -> int:
    """Replay, then write ``changes.jsonl``, ``assignments.jsonl`` and ``band-changes.jsonl``."""
    from offline.errors import InputError
    from offline.event_time_order import time_ordered
    from offline.partitioned_log import partition_events
    from rescorer.common import load_settings
    from schemas.model import ModelRejected
    from schemas.registry import ModelRegistry
    from scoring.holdout import HoldoutPolicy
    from scoring.online_clusters import DEFAULT_LEARNING_RATE
    from scoring.reassignment import RescoreConfig
    from scoring.replay import replay_into
    from scoring.traits import BandThresholds

    if args.sweep_period_hours <= 0:
        raise UsageError(f"--sweep-period-hours {args.sweep_period_hours:g} must be positive")
    if args.recheck_days * 24 < args.sweep_period_hours:
        raise UsageError(f"--recheck-days {args.recheck_days:g} is shorter than the sweep period")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size} must be at least 1")
    if not args.model_dir.is_dir():
        raise UsageError(f"--model-dir {args.model_dir} is not a directory")
    try:
        model = ModelRegistry(args.model_dir).active()
    except (ModelRejected, ValueError) as exc:
        raise UsageError(f"--model-dir {args.model_dir}: {exc}") from exc
    if model is None:
        raise UsageError(f"--model-dir {args.model_dir} has no active model")
    settings = load_settings()
    config = RescoreConfig(
        margin=args.margin,
        learning_rate=DEFAULT_LEARNING_RATE if args.learning_rate is None else args.learning_rate,
        sweep_period=timedelta(hours=args.sweep_period_hours),
        recheck_period=timedelta(days=args.recheck_days),
        holdout=HoldoutPolicy.from_settings(settings),
        traits_horizon_days=settings.traits_horizon_days,
        bands=BandThresholds(settings.risk_band_medium, settings.risk_band_high),
    )
    try:
        # Out of core: validated and split on disk, then merged in event time (bounded memory).
        log = partition_events(args.events, args.max_invalid_share, args.work_dir)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    args.out.mkdir(parents=True, exist_ok=True)
    replayed = [0]
    with log, _FileSink(args.out) as sink:
        events = _events(time_ordered(log), replayed)
        summary = replay_into(events, model, sink, config, args.batch_size)
    reasons = sink.reasons
    print(
        f"replayed {replayed[0]} events with model v{model.version}: "
        f"{sink.assigned} customers assigned, {sum(reasons.values())} changes "
        f"({', '.join(f'{r}={n}' for r, n in sorted(reasons.items())) or 'none'})"
    )
    print(
        "events: "
        + ", ".join(
            f"{k}={summary.counts.get(k, 0)}"
            for k in ("applied", "duplicate", "too_old", "session", "future")
        )
    )
    kinds = sink.band_kinds
    print(
        f"risk bands: {sum(kinds.values())} changes "
        f"({', '.join(f'{k}={kinds[k]}' for k in ('first', 'up', 'down'))})"
    )
    print(
        f"wrote {args.out / 'changes.jsonl'}, {args.out / 'assignments.jsonl'} "
        f"and {args.out / 'band-changes.jsonl'}"
    )
    return 0
