"""``rescorer kafka start|stop|status``: a local broker for development and the demo.

The broker runs detached; its state (pid, address, work directory) is kept in
``<cache>/dev-broker/state.json`` so ``stop`` and ``status`` can find it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from rescorer.devkafka.jars import JarFetchError, cache_root
from rescorer.devkafka.local import LocalKafka, LocalKafkaError, port_open, terminate
from rescorer.devkafka.provider import BOOTSTRAP_ENV
from rescorer.errors import UsageError


def register(commands: Any) -> None:
    """Add the ``kafka`` subcommand."""
    parser = commands.add_parser("kafka", help="start, stop or inspect a local Kafka broker")
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument(
        "--port",
        type=int,
        default=9092,
        help="PLAINTEXT port on 127.0.0.1 (0 = any free port; default 9092)",
    )
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for ready")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the broker's state and data live (default: <cache>/dev-broker)",
    )
    parser.set_defaults(handler=run)


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / "state.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state


def _running(state: dict[str, Any] | None) -> bool:
    if state is None:
        return False
    try:
        os.kill(int(state["pid"]), 0)
    except (ProcessLookupError, PermissionError, KeyError, ValueError):
        return False
    host, _, port = str(state["bootstrap_servers"]).rpartition(":")
    return port_open(host, int(port))


def run(args: argparse.Namespace) -> int:
    """Dispatch to start, stop or status."""
    if args.port < 0 or args.port > 65535:
        raise UsageError(f"--port {args.port} is not a TCP port")
    state_dir: Path = args.state_dir or cache_root() / "dev-broker"
    state = _read_state(state_dir)
    if args.action == "status":
        if _running(state):
            assert state is not None  # noqa: S101 - narrowed by _running
            print(f"running {state['bootstrap_servers']} pid={state['pid']}")
            return 0
        print("stopped")
        return 3
    if args.action == "stop":
        if state is not None:
            terminate(int(state["pid"]))
            shutil.rmtree(state.get("workdir", ""), ignore_errors=True)
            (state_dir / "state.json").unlink(missing_ok=True)
            print(f"stopped {state['bootstrap_servers']}")
        else:
            print("not running")
        return 0
    configured = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if configured:
        print(configured)
        return 0
    if _running(state):
        assert state is not None  # noqa: S101 - narrowed by _running
        print(state["bootstrap_servers"])
        return 0
    state_dir.mkdir(parents=True, exist_ok=True)
    workdir = state_dir / "broker"
    shutil.rmtree(workdir, ignore_errors=True)
    broker = LocalKafka(workdir, port=args.port)
    try:
        bootstrap = broker.start(timeout=args.timeout)
    except (LocalKafkaError, JarFetchError) as exc:
        raise UsageError(str(exc)) from exc
    (state_dir / "state.json").write_text(
        json.dumps({"pid": broker.pid, "bootstrap_servers": bootstrap, "workdir": str(workdir)})
    )
    print(bootstrap)
    return 0
