"""The ``rescorer`` command: one entry point, one subcommand per job.

Usage errors (a bad flag, an unreadable file) print one line naming the
problem and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from rescorer import __version__
from rescorer.errors import EXIT_DENIED, EXIT_FAILURE, EXIT_USAGE, RuntimeFailure, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full command tree."""
    from rescorer import (
        acl_command,
        convert_command,
        demo_command,
        kafka_command,
        models_command,
        replay_command,
        retrain_command,
        schemas_command,
        simulate_command,
        train_command,
        worker_command,
    )

    parser = _Parser(prog="rescorer", description="Keep RFM customer segments live.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in (
        train_command,
        retrain_command,
        models_command,
        convert_command,
        replay_command,
        simulate_command,
        demo_command,
        kafka_command,
        schemas_command,
        worker_command,
        acl_command,
    ):
        command.register(commands)
    return parser


def authorization_failure(exc: BaseException) -> str | None:
    """One line when `exc` (or what caused it) is Kafka refusing an operation, else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if any(cls.__name__.endswith(("AuthorizationError", "AuthorizationFailedError",
                                      "AuthorizationFailed"))
               for cls in type(seen).__mro__):  # fmt: skip
            said = " ".join(str(seen).split()) or type(seen).__name__
            user = os.environ.get("RESCORER_KAFKA_SASL_USERNAME")
            who = f"user {user!r}" if user else "this client"
            return f"Kafka denied {who}: {said} (`rescorer acl plan` lists what each role needs)"
        seen = seen.__cause__ or seen.__context__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except UsageError as exc:
        print(f"rescorer {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeFailure as exc:
        print(f"rescorer {args.command}: failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        denied = authorization_failure(exc)
        if denied is None:
            raise
        print(f"rescorer {args.command}: not authorized: {denied}", file=sys.stderr)
        return EXIT_DENIED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
