"""``rescorer worker``: run the streaming re-scorer (a Faust worker)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from rescorer.common import kafka_failure, margin_arg, rate_arg
from rescorer.errors import UsageError
from rescorer.leaving import leave


def register(commands: Any) -> None:
    """Add the ``worker`` subcommand."""
    parser = commands.add_parser(
        "worker", help="consume events and keep every customer's segment current"
    )
    parser.add_argument("--partitions", type=int, help="partitions of the events topic")
    parser.add_argument("--margin", type=margin_arg, help="hysteresis margin in [0, 1)")
    parser.add_argument("--learning-rate", type=rate_arg, help="online centroid rate (0 = frozen)")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Check settings and topics, then hand over to Faust until stopped."""
    from kafka.errors import KafkaError
    from pydantic import ValidationError

    from streams.settings import WorkerSettings
    from streams.topics import TopicMismatch, ensure_topics

    overrides: dict[str, Any] = {}
    for flag, field in (
        ("partitions", "partitions"),
        ("margin", "hysteresis_margin"),
        ("learning_rate", "learning_rate"),
    ):
        if getattr(args, flag) is not None:
            overrides[field] = getattr(args, flag)
    try:
        settings = WorkerSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "_".join(str(p) for p in first["loc"]).upper()
        raise UsageError(f"RESCORER_{where}: {first['msg']}" if where else first["msg"]) from exc
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        ensure_topics(settings)
    except TopicMismatch as exc:
        raise UsageError(str(exc)) from exc
    except KafkaError as exc:
        raise kafka_failure(settings, exc) from exc

    _without_scikit_learn()
    import faust

    from streams.worker import RescorerWorker

    worker = RescorerWorker(settings)
    if settings.metrics_port:
        try:
            worker.metrics.serve(settings.metrics_port)
        except OSError as exc:
            raise UsageError(f"RESCORER_METRICS_PORT {settings.metrics_port}: {exc}") from exc
        logging.getLogger("streams").info(
            "metrics at http://0.0.0.0:%d/metrics", settings.metrics_port
        )
    runner = faust.Worker(worker.app, loglevel=args.log_level, quiet=True)
    # mode leaves the root logger at DEBUG and filters in the handler, so every
    # client debug call (aiokafka logs per message sent) builds a record; pin
    # the libraries to the chosen level instead.
    for name in ("aiokafka", "kafka", "faust", "mode", "streams", "rescorer"):
        logging.getLogger(name).setLevel(args.log_level.upper())
    try:
        runner.execute_from_commandline()
    except SystemExit as exc:  # how mode's worker always ends, its code saying how it went
        leave(0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1)
    return 0


def _without_scikit_learn() -> None:
    """Tell this worker process scikit-learn is absent, unless it was imported already.

    The worker never uses it (models are plain data, `scoring.space`), but
    River's ``river.stream`` imports it when it can, for its dataset helpers:
    a second of every start. River treats it as optional.
    """
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]
