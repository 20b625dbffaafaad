"""``rescorer acl plan|apply``: least-privilege Kafka ACLs for a deployment.

``plan`` prints the bindings (see `rescorer.acl_plan`) for the configured
topic names and app id; ``apply`` connects with the configured (admin)
credentials, creates the topics the deployment uses and then the bindings.
"""

from __future__ import annotations

import argparse
from typing import Any

from rescorer.acl_plan import (
    DEFAULT_READER_GROUP_PREFIX,
    Grant,
    PrincipalError,
    check_principal,
    plan,
)
from rescorer.errors import UsageError
from schemas.retrain import DEFAULT_RETRAIN_GROUP


def register(commands: Any) -> None:
    """Add the ``acl`` subcommand."""
    parser = commands.add_parser("acl", help="print or create the Kafka ACLs of each principal")
    parser.add_argument("action", choices=["plan", "apply"])
    parser.add_argument("--principal-worker", metavar="User:NAME", help="the stream worker")
    parser.add_argument("--principal-trainer", metavar="User:NAME", help="train / retrain jobs")
    parser.add_argument(
        "--principal-reader", metavar="User:NAME", action="append", default=[],
        help="a downstream reader of segment-changes and risk-band-changes (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--readers-see-assignments", action="store_true",
        help="readers may also read customer-segments (current segment and features)",
    )  # fmt: skip
    parser.add_argument(
        "--reader-group-prefix", default=DEFAULT_READER_GROUP_PREFIX,
        help=f"consumer groups readers may use (prefix; default {DEFAULT_READER_GROUP_PREFIX})",
    )  # fmt: skip
    parser.add_argument(
        "--trainer-group", default=DEFAULT_RETRAIN_GROUP,
        help=f"consumer group of rescorer retrain (default {DEFAULT_RETRAIN_GROUP})",
    )  # fmt: skip
    parser.set_defaults(handler=run)


def grants_from_args(
    args: argparse.Namespace, topics: Any, app_id: str, exactly_once: bool = False
) -> list[Grant]:
    """The plan for the flags given; `UsageError` for a bad principal or none at all."""
    try:
        worker = args.principal_worker and check_principal(
            args.principal_worker, "--principal-worker"
        )
        trainer = args.principal_trainer and check_principal(
            args.principal_trainer, "--principal-trainer"
        )
        readers = [check_principal(r, "--principal-reader") for r in args.principal_reader]
    except PrincipalError as exc:
        raise UsageError(str(exc)) from exc
    if not (worker or trainer or readers):
        raise UsageError("name at least one of --principal-worker, --principal-trainer, "
                         "--principal-reader")  # fmt: skip
    for flag, value in (("--reader-group-prefix", args.reader_group_prefix),
                        ("--trainer-group", args.trainer_group)):  # fmt: skip
        if not value or any(c.isspace() for c in value) or "*" in value:
            raise UsageError(f"{flag} {value!r} must be a non-empty name without spaces or '*'")
    return plan(
        topics, app_id, worker=worker or None, trainer=trainer or None, readers=readers,
        readers_see_assignments=args.readers_see_assignments,
        reader_group_prefix=args.reader_group_prefix, trainer_group=args.trainer_group,
        exactly_once=exactly_once,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Print the plan; with ``apply``, create topics and bindings."""
    from pydantic import ValidationError

    from streams.settings import WorkerSettings

    try:
        settings = WorkerSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise UsageError(f"invalid setting {where}: {first['msg']}") from exc
    grants = grants_from_args(args, settings.topics, settings.app_id, settings.exactly_once)
    if args.action == "plan":
        for grant in grants:
            print(grant)
        return 0
    from rescorer.acl_apply import apply_grants

    return apply_grants(settings, grants)
