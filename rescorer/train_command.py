"""``rescorer train``: baseline segments from an event history."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rescorer.common import load_settings, parse_timestamp, progress_reporter, share_arg
from rescorer.errors import RuntimeFailure, UsageError

if TYPE_CHECKING:
    from offline.history import EventHistory
    from offline.trainer import TrainResult
    from schemas.model import SegmentModel
    from schemas.settings import RescorerSettings


def _k(text: str) -> str | int:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--k must be 'auto' or an integer, not {text!r}"
        ) from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"--k {value}: at least 2 segments are needed")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def weights_arg(text: str) -> tuple[float, float, float]:
    """argparse type: ``recency_days=2,frequency=1,monetary=1`` (unnamed features weigh 1)."""
    from schemas.segments import FEATURE_NAMES

    weights: dict[str, float] = dict.fromkeys(FEATURE_NAMES, 1.0)
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in weights:
            raise argparse.ArgumentTypeError(
                f"{part!r}: expected FEATURE=WEIGHT with FEATURE one of {', '.join(FEATURE_NAMES)}"
            )
        try:
            weight = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: {value!r} is not a number") from None
        if not 0.0 < weight <= 100.0:
            raise argparse.ArgumentTypeError(f"{part!r}: a weight must be in (0, 100]")
        weights[name.strip()] = weight
    recency, frequency, monetary = (weights[n] for n in FEATURE_NAMES)
    return recency, frequency, monetary


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The event source and training options shared by ``train`` and ``retrain``."""
    parser.add_argument(
        "--events",
        nargs="+",
        metavar="PATH",
        help="event files (.csv, .parquet, .jsonl), directories or globs; with --from-kafka, "
        "the history before the topic's retention (an event in both counts once)",
    )
    parser.add_argument(
        "--from-kafka",
        action="store_true",
        help="read the events topic from the beginning to its current end",
    )
    parser.add_argument(
        "--as-of", help="evaluate features at this ISO-8601 time (default: the latest event)"
    )
    parser.add_argument("--k", type=_k, default="auto", help="'auto' (default) or a number")
    parser.add_argument("--k-min", type=int, default=3, help="smallest k tried (default 3)")
    parser.add_argument("--k-max", type=int, default=7, help="largest k tried (default 7)")
    parser.add_argument("--window-days", type=int, default=365, help="RFM window (default 365)")
    parser.add_argument(
        "--min-share",
        type=share_arg,
        default=0.02,
        help="materiality floor: smallest segment share (default 0.02)",
    )
    parser.add_argument(
        "--max-invalid-share",
        type=share_arg,
        default=0.01,
        help="stop if more rows than this share are invalid (default 0.01)",
    )
    parser.add_argument(
        "--bootstrap",
        type=_positive,
        default=20,
        help="bootstrap resamples for stability (default 20)",
    )
    parser.add_argument(
        "--holdout-days",
        type=_positive,
        default=90,
        help="temporal holdout H in days (default 90, 0 = off)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--weights", type=weights_arg, default=(1.0, 1.0, 1.0), metavar="FEATURE=W,...",
        help="multiply standardised features, e.g. recency_days=2 (recorded in the model and "
        "used the same way by the worker and replay)",
    )  # fmt: skip
    parser.add_argument(
        "--engine",
        choices=("polars", "spark"),
        default="polars",
        help="how the per-customer features are computed: polars on this machine, out of "
        "core (default), or Apache Spark (needs the [spark] extra)",
    )
    parser.add_argument(
        "--spark-master",
        metavar="URL",
        help="Spark master for --engine spark (default local[*]; e.g. spark://host:7077)",
    )
    parser.add_argument(
        "--work-dir",
        metavar="DIR",
        help="where the polars engine splits the events by customer (default: a temporary "
        "directory; needs about the input's size free)",
    )
    parser.add_argument(
        "--model-dir", type=Path, help="registry directory (default RESCORER_MODEL_DIR)"
    )


def register(commands: Any) -> None:
    """Add the ``train`` subcommand."""
    parser = commands.add_parser("train", help="train baseline segments from an event history")
    add_training_arguments(parser)
    parser.add_argument("--report", type=Path, metavar="DIR", help="write an HTML report here")
    parser.add_argument(
        "--promote",
        action="store_true",
        help="make the new model active (the first model always is)",
    )
    parser.add_argument(
        "--publish", action="store_true", help="publish the active model to the models topic"
    )
    parser.set_defaults(handler=run)


def train_from_args(
    args: argparse.Namespace,
    settings: RescorerSettings,
    previous: SegmentModel | None,
    version: int,
    progress: Callable[[str], None],
) -> tuple[EventHistory, TrainResult]:
    """Read the events the arguments name and train version `version` on them."""
    from offline.errors import InputError, KafkaUnavailable
    from offline.trainer import TrainConfig, train

    if args.k_min < 2 or args.k_max < args.k_min:
        raise UsageError(f"--k-min {args.k_min} / --k-max {args.k_max}: need 2 <= k-min <= k-max")
    if args.window_days < 1:
        raise UsageError(f"--window-days {args.window_days} must be at least 1")
    if not args.events and not args.from_kafka:
        raise UsageError("name the events: --events PATH..., --from-kafka, or both")
    if args.engine == "spark" and args.from_kafka:
        raise UsageError("--engine spark reads --events files, not --from-kafka")
    if args.spark_master and args.engine != "spark":
        raise UsageError("--spark-master needs --engine spark")
    as_of = parse_timestamp(args.as_of, "--as-of") if args.as_of else None
    try:
        config = TrainConfig(
            as_of=as_of,
            window_days=args.window_days,
            k=args.k,
            k_range=(args.k_min, args.k_max),
            min_share=args.min_share,
            seed=args.seed,
            bootstrap_resamples=args.bootstrap,
            holdout_days=args.holdout_days,
            version=version,
            weights=args.weights,
        )
        if args.from_kafka:
            from offline.kafka_history import partition_topic

            progress(f"reading {settings.topics.events}, splitting it by customer")
            with partition_topic(
                settings, args.max_invalid_share, args.work_dir, progress, args.events or ()
            ) as from_topic:
                return from_topic, train(from_topic, config, previous, progress)
        if args.engine == "spark":
            from offline.spark_history import open_spark_history

            progress("reading events with Spark")
            with open_spark_history(
                args.events, args.max_invalid_share, args.spark_master
            ) as spark_log:
                return spark_log, train(spark_log, config, previous, progress)
        from offline.partitioned_log import partition_events

        progress("reading events, splitting them by customer")
        with partition_events(args.events, args.max_invalid_share, args.work_dir) as split:
            return split, train(split, config, previous, progress)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    except KafkaUnavailable as exc:
        raise RuntimeFailure(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    """Train, store, and optionally promote and publish."""
    from offline.publishing import promote, publish_active, store
    from schemas.registry import ModelRegistry

    settings = load_settings()
    registry = ModelRegistry(args.model_dir or settings.model_dir)
    with progress_reporter() as progress:
        log, result = train_from_args(args, settings, registry.active(), registry.next_version(),
                                      progress)  # fmt: skip
        if args.report:
            progress("storing the model, writing the report")
        stored = store(settings, registry, result, log.rejections, args.report)
    model = stored.model
    promote(registry, model, always=args.promote)
    active = registry.active_version()
    print(f"model v{model.version} ({stored.path}); active: v{active}")
    print(
        f"as of {model.as_of.isoformat()}: {model.n_customers} customers, {model.n_events} "
        f"events, k={len(model.segments)}"
    )
    v = model.validation
    print(
        f"silhouette={v.silhouette:.3f} davies_bouldin={v.davies_bouldin:.3f} "
        f"calinski_harabasz={v.calinski_harabasz:.1f} bootstrap_ari={v.bootstrap_ari:.3f} "
        + (
            f"holdout_ari={v.holdout_ari:.3f} holdout_changed={v.holdout_changed_share:.3f}"
            if v.holdout_ari is not None
            else "holdout=skipped"
        )
    )
    for segment in model.segments:
        p = segment.profile
        assert p is not None  # noqa: S101 - the trainer writes profiles
        print(
            f"  {segment.segment_id:>3}  {segment.name:<20} {p.size:>9} customers "
            f"{p.share:6.1%}  revenue {p.revenue_share:6.1%}  AOV {p.average_order_value:9.2f}"
        )
    if log.rejections.rejected:
        print(log.rejections.summary())
    for note in result.notes:
        print(f"note: {note}")
    if stored.report is not None:
        print(f"report: {stored.report}")
    if args.publish:
        published = publish_active(settings, registry)
        print(f"published v{published.version} to {settings.topics.models}")
    return 0
