"""``rescorer schemas export|check``: the JSON Schema files of the contracts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from schemas.export import JSON_DIR, export, stale


def register(commands: Any) -> None:
    """Add the ``schemas`` subcommand."""
    parser = commands.add_parser("schemas", help="export or check the JSON Schema files")
    parser.add_argument("action", choices=["export", "check"])
    parser.add_argument("--dir", type=Path, default=JSON_DIR, help="target directory")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Export the files, or exit 1 when the committed ones are stale."""
    if args.action == "export":
        for path in export(args.dir):
            print(path)
        return 0
    outdated = stale(args.dir)
    for name in outdated:
        print(f"stale: {name} (run 'rescorer schemas export')")
    return 1 if outdated else 0
