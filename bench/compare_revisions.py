"""Benchmark: two revisions' workers side by side, interleaved, on one broker.

For a change that must be "no worse than before": the same history and the
same load for the worker of revision A and of revision B, in rounds (A, B,
A, B, ...), so that whatever the machine does meanwhile falls on both alike.
Each revision is checked out in a git worktree and its worker runs from it
(``PYTHONPATH``), with a model its own trainer made from the same history.
Per round and revision, on a fresh copy of the events topic:

- catch-up: events/s from 0 to the end (from the consumer group's committed
  offsets, as in ``bench/stream_throughput.py``), and ``ratio_pipe`` against
  the bare aiokafka pipe measured in the same round;
- latency: once the sweep has re-scored the history, the new-customer probe
  of ``bench/stream_throughput.py`` (default 5,000 events/s for 30 s, the
  whole population due), p50 and p99 from produce to the change's append.

Prints every round, then the median per revision and a RESULT line.

Usage: ``python -m bench.compare_revisions REV_A REV_B [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from bench.stream_throughput import (
    PARTITIONS,
    ROOT,
    Worker,
    consume_rate,
    copy_topic,
    group_rate,
    history,
    latency,
    produce_history,
    wait_for,
    worker_env,
)
from rescorer.devkafka import provide_broker


@dataclass
class Figures:
    """One worker run: catch-up rate, the pipe of its round, probe latency."""

    worker_eps: float
    pipe_eps: float
    p50_ms: float
    p99_ms: float

    @property
    def ratio_pipe(self) -> float:
        return self.worker_eps / self.pipe_eps


def git() -> str:
    """The git executable (one line and exit 2 without one)."""
    found = shutil.which("git")
    if found is None:
        print("compare_revisions: needs git on PATH", file=sys.stderr)
        raise SystemExit(2)
    return found


def checkout(rev: str, into: Path) -> Path:
    """A detached worktree of `rev` (one line and exit 2 for a revision git does not know)."""
    found = subprocess.run(
        [git(), "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        print(f"compare_revisions: {rev}: not a commit of {ROOT}", file=sys.stderr)
        raise SystemExit(2)
    subprocess.run(
        [git(), "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(into),
         found.stdout.strip()],
        check=True,
    )  # fmt: skip
    return into


def train_model(tree: Path, events: Path, models: Path) -> None:
    """The revision's own `rescorer train` on the history, promoted into `models`."""
    subprocess.run(
        [sys.executable, "-m", "rescorer", "train", "--events", str(events),
         "--model-dir", str(models), "--promote", "--bootstrap", "2", "--holdout-days", "0"],
        env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def run_worker(
    bootstrap: str,
    tree: Path,
    models: Path,
    work: Path,
    source: str,
    total: int,
    latest: datetime,
    args: argparse.Namespace,
) -> Figures:
    """One revision's worker on a fresh copy of the history: catch-up, then the probe."""
    app_id = f"c{uuid.uuid4().hex[:8]}"
    env = {
        **worker_env(bootstrap, app_id, f"{app_id}-models", models, work / "data"),
        "PYTHONPATH": str(tree),
    }
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([
        NewTopic(f"{app_id}-events", PARTITIONS, 1), NewTopic(f"{app_id}-pipe", PARTITIONS, 1),
        NewTopic(f"{app_id}-changes", PARTITIONS, 1,
                 topic_configs={"message.timestamp.type": "LogAppendTime"}),
    ])  # fmt: skip
    admin.close()
    asyncio.run(copy_topic(bootstrap, source, f"{app_id}-events", total))
    pipe = asyncio.run(consume_rate(bootstrap, source, total, f"{app_id}-pipe"))
    work.mkdir(parents=True)
    log = work / "worker.log"
    worker = Worker(env, log)
    try:
        eps = group_rate(bootstrap, app_id, f"{app_id}-events", total, worker.process, log)
        wait_for(lambda: worker.total("rescorer_sweep_overdue_customers") == 0, 600, "the sweep")
        time.sleep(5)
        p50, p99, _, matched, sent = latency(
            bootstrap, f"{app_id}-events", f"{app_id}-changes", args.rate, args.seconds,
            latest + timedelta(days=40),
        )  # fmt: skip
        if matched < sent:
            print(f"  ({sent - matched} of {sent} probe changes did not arrive)")
    finally:
        worker.stop()
    return Figures(eps, pipe, p50, p99)


def median(runs: list[Figures], name: str) -> float:
    return statistics.median(getattr(run, name) for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the revision before (any git revision)")
    parser.add_argument("b", help="the revision after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--rate", type=int, default=5000, help="latency probe events/s")
    parser.add_argument("--seconds", type=float, default=30.0, help="latency probe duration")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory() as scratch, provide_broker() as broker:
        work = Path(scratch)
        trees: dict[str, Path] = {}
        try:
            for side in ("a", "b"):
                trees[side] = checkout(getattr(args, side), work / f"tree-{side}")
            bootstrap = broker.bootstrap_servers
            frame = history(args.customers, args.events)
            events_file = work / "history.parquet"
            frame.write_parquet(events_file)
            models = {}
            for side, tree in trees.items():
                models[side] = work / f"models-{side}"
                train_model(tree, events_file, models[side])
            source = f"c{uuid.uuid4().hex[:6]}-history"
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            admin.create_topics([NewTopic(source, PARTITIONS, 1)])
            admin.close()
            total = produce_history(bootstrap, source, frame)
            latest = frame["occurred_at"].max().replace(tzinfo=UTC)  # type: ignore[union-attr]
            print(f"broker {bootstrap} ({broker.kind}); {total} events, {args.customers} "
                  f"customers; A={args.a} B={args.b}, {args.rounds} rounds")  # fmt: skip
            runs: dict[str, list[Figures]] = {"a": [], "b": []}
            for n in range(args.rounds):
                for side in ("a", "b") if n % 2 == 0 else ("b", "a"):
                    got = run_worker(
                        bootstrap, trees[side], models[side], work / f"run{n}-{side}", source,
                        total, latest, args,
                    )  # fmt: skip
                    runs[side].append(got)
                    print(f"round {n + 1} {side.upper()}: worker {got.worker_eps:,.0f} events/s, "
                          f"pipe {got.pipe_eps:,.0f} (ratio_pipe {got.ratio_pipe:.3f}), "
                          f"p50 {got.p50_ms:.0f} ms, p99 {got.p99_ms:.0f} ms",
                          flush=True)  # fmt: skip
            a, b = runs["a"], runs["b"]
            for side, got in runs.items():
                print(f"median {side.upper()}: ratio_pipe {median(got, 'ratio_pipe'):.3f}, "
                      f"p99 {median(got, 'p99_ms'):.0f} ms over {len(got)} runs")  # fmt: skip
            print(
                f"RESULT a={args.a} b={args.b} rounds={args.rounds} "
                f"a_worker_eps={median(a, 'worker_eps'):.0f} "
                f"b_worker_eps={median(b, 'worker_eps'):.0f} "
                f"a_ratio_pipe={median(a, 'ratio_pipe'):.3f} "
                f"b_ratio_pipe={median(b, 'ratio_pipe'):.3f} "
                f"a_p50_ms={median(a, 'p50_ms'):.0f} b_p50_ms={median(b, 'p50_ms'):.0f} "
                f"a_p99_ms={median(a, 'p99_ms'):.0f} b_p99_ms={median(b, 'p99_ms'):.0f} "
                f"a_p99_runs={'/'.join(f'{r.p99_ms:.0f}' for r in a)} "
                f"b_p99_runs={'/'.join(f'{r.p99_ms:.0f}' for r in b)}"
            )
        finally:
            for tree in trees.values():
                subprocess.run(
                    [git(), "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                    check=False,
                )  # fmt: skip


if __name__ == "__main__":
    main()
