"""``rescorer models list|show N|promote N|rollback|publish [N]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rescorer.common import load_settings
from rescorer.errors import UsageError


def register(commands: Any) -> None:
    """Add the ``models`` subcommand."""
    parser = commands.add_parser("models", help="list, inspect, promote or publish models")
    parser.add_argument("action", choices=["list", "show", "promote", "rollback", "publish"])
    parser.add_argument("version", nargs="?", type=int, help="model version (show, promote)")
    parser.add_argument("--model-dir", type=Path, help="registry (default RESCORER_MODEL_DIR)")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="with promote/rollback: also publish the new active model",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Dispatch one registry action."""
    from schemas.registry import ModelRegistry, RegistryError

    settings = load_settings()
    registry = ModelRegistry(args.model_dir or settings.model_dir)
    try:
        if args.action == "list":
            active = registry.active_version()
            versions = registry.versions()
            if not versions:
                print(f"no models in {registry.root}")
            for version in versions:
                model = registry.load(version)
                names = ", ".join(s.name for s in model.segments)
                marker = "*" if version == active else " "
                print(
                    f"{marker} v{version:<4} as of {model.as_of:%Y-%m-%d}  "
                    f"{model.n_customers:>9} customers  k={len(model.segments)}  "
                    f"silhouette={model.validation.silhouette or 0:.3f}  [{names}]"
                )
                for unstable in model.validation.unstable_segments:
                    name = model.segment(int(unstable)).name
                    print(f"        {name}: unstable: consider merging")
            return 0
        if args.action == "show":
            shown: int | None = args.version or registry.active_version()
            if shown is None:
                raise UsageError("no version given and no active model")
            model = registry.load(shown)
            print(model.model_dump_json(indent=2))
            for unstable in model.validation.unstable_segments:  # stdout stays one JSON document
                name = model.segment(int(unstable)).name
                print(f"segment {unstable} ({name}): unstable: consider merging", file=sys.stderr)
            return 0
        if args.action == "promote":
            if args.version is None:
                raise UsageError("promote needs a version")
            registry.promote(args.version)
            print(f"active: v{args.version}")
        elif args.action == "rollback":
            print(f"active: v{registry.rollback()}")
        if args.action == "publish" or args.publish:
            from offline.kafka_io import publish_model

            target: int | None = (
                args.version
                if args.action == "publish" and args.version
                else registry.active_version()
            )
            if target is None:
                raise UsageError("no active model to publish")
            publish_model(settings, registry.load(target))
            print(f"published v{target} to {settings.topics.models}")
    except RegistryError as exc:
        raise UsageError(str(exc)) from exc
    return 0
