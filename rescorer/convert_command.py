"""``rescorer convert-cdnow``: the CDNOW purchase log as CustomerEvent files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rescorer.errors import UsageError


def register(commands: Any) -> None:
    """Add the ``convert-cdnow`` subcommand."""
    parser = commands.add_parser("convert-cdnow", help="convert the CDNOW log to event files")
    parser.add_argument(
        "input", type=Path, help="CDNOW CSV (customer_id,date,number_of_cds,dollar_value)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output .jsonl or .parquet")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Convert and write."""
    from offline.cdnow import convert_cdnow, write_events
    from offline.errors import InputError

    if not args.input.is_file():
        raise UsageError(f"no such file: {args.input}")
    try:
        frame = convert_cdnow(args.input)
        write_events(frame, args.out)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    purchases = frame.filter(frame["type"] == "purchase").height
    print(
        f"{frame.height} events ({purchases} purchases, {frame.height - purchases} $0 rows "
        f"as sessions) for {frame['customer_id'].n_unique()} customers -> {args.out}"
    )
    return 0
