"""Fault scenarios against a real broker, judged against `rescorer replay`'s core.

Shared by `tests/integration/test_exactness.py` and `bench/fault_injection.py`.
A scenario produces a synthetic workload, runs workers through a fault (a
SIGKILL, a redelivered copy, a broker restart, a rebalance), waits until the
input is consumed, and compares the latest value of every key on
``customer-segments`` with a replay of the same events:

- the same customers;
- at a common as-of (the latest event time) the same last purchase time,
  frequency and monetary: a frequency below the replay's is a *lost* event,
  above it a *double-counted* one, anything else a *mismatch*;
- with a frozen model and a zero margin, the same segment at that as-of.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from offline.events_io import load_events
from offline.kafka_io import publish_model
from offline.simulator import event_bodies, generate
from offline.synthetic import MALFORMED_KINDS, malformed
from offline.trainer import TrainConfig, train
from schemas.events import CustomerEvent
from schemas.model import SegmentModel
from schemas.segments import SegmentAssignment
from scoring.reassignment import RescoreConfig
from scoring.replay import replay
from scoring.space import ModelSpace
from streams.settings import WorkerSettings
from streams.topics import ensure_topics
from tests.support.worker_harness import (
    Stack,
    WorkerProcess,
    produce,
    produce_raw,
    read_all,
    wait_until,
)

END = datetime(2025, 6, 30, tzinfo=UTC)
EXACT_ENV = {
    "RESCORER_LEARNING_RATE": "0",
    "RESCORER_HYSTERESIS_MARGIN": "0",
    "RESCORER_DRIFT_INTERVAL_SECONDS": "1",
}


@dataclass(frozen=True)
class Workload:
    """Events (as produced) and what a replay of them says."""

    bodies: list[dict[str, Any]]
    model: SegmentModel
    expected: dict[str, SegmentAssignment]
    as_of: datetime


def workload(customers: int, days: int = 200, seed: int = 3) -> Workload:
    """Synthetic traffic (inside one RFM window), a model trained on it, and its replay."""
    frame, _ = generate(customers, days, END, 1, seed, 0.0, None)
    bodies = list(event_bodies(frame))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_text("".join(json.dumps(b) + "\n" for b in bodies))
        log = load_events([str(path)])
    model = train(log, TrainConfig(version=1, bootstrap_resamples=2, holdout_days=0)).model
    events = sorted((CustomerEvent.model_validate(b) for b in bodies), key=lambda e: e.occurred_at)
    result = replay(events, model, RescoreConfig(margin=0.0, learning_rate=0.0))
    expected = {a.customer_id: a for a in result.assignments}
    return Workload(bodies, model, expected, max(a.as_of for a in result.assignments))


@dataclass
class Tally:
    """What a scenario found; lost, double_counted and mismatched must all be 0."""

    events: int = 0
    faults: int = 0
    lost: int = 0
    double_counted: int = 0
    mismatched: int = 0
    duplicated_changes: int = 0
    """Changes a read_committed consumer saw more than once (same customer, segment,
    as-of and trigger): 0 in exactly-once mode; at least once, crashes make some."""
    examples: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        """Fold another scenario's tally in."""
        self.events += other.events
        self.faults += other.faults
        self.lost += other.lost
        self.double_counted += other.double_counted
        self.mismatched += other.mismatched
        self.duplicated_changes += other.duplicated_changes
        self.examples.extend(other.examples)

    @property
    def exact(self) -> bool:
        """Nothing lost, doubled or different."""
        return self.lost == self.double_counted == self.mismatched == 0

    def result_line(self) -> str:
        """The ``RESULT`` line of the benchmark."""
        return (
            f"RESULT events={self.events} faults={self.faults} lost={self.lost} "
            f"double_counted={self.double_counted} mismatched={self.mismatched} "
            f"duplicated_changes={self.duplicated_changes}"
        )


def compare(latest: dict[str, dict[str, Any]], work: Workload) -> Tally:
    """Judge the latest assignments against the replay (see the module docstring)."""
    tally = Tally()

    def note(kind: str, text: str) -> None:
        setattr(tally, kind, getattr(tally, kind) + 1)
        if len(tally.examples) < 10:
            tally.examples.append(text)

    space = ModelSpace.from_model(work.model)
    shifted: list[tuple[str, list[float]]] = []
    for customer, want in work.expected.items():
        got = latest.get(customer)
        if got is None:
            note("lost", f"{customer}: no assignment")
            continue
        f = got["features"]
        as_of = datetime.fromisoformat(got["as_of"])
        frequency, expected_frequency = int(f["frequency"]), int(want.features.frequency)
        if frequency < expected_frequency:
            note("lost", f"{customer}: frequency {frequency}, replay {expected_frequency}")
            continue
        if frequency > expected_frequency:
            note(
                "double_counted", f"{customer}: frequency {frequency}, replay {expected_frequency}"
            )
            continue
        last = as_of - timedelta(days=f["recency_days"])
        expected_last = want.as_of - timedelta(days=want.features.recency_days)
        if abs((last - expected_last).total_seconds()) > 1.0:
            note("mismatched", f"{customer}: last purchase {last}, replay {expected_last}")
        elif abs(f["monetary"] - want.features.monetary) > 1e-6:
            note("mismatched", f"{customer}: monetary {f['monetary']} vs {want.features.monetary}")
        else:
            recency = (work.as_of - last).total_seconds() / 86_400
            shifted.append((customer, [recency, f["frequency"], f["monetary"]]))
    if shifted:
        nearest = space.nearest(np.asarray([row for _, row in shifted], dtype=np.float64))
        for (customer, _), index in zip(shifted, nearest, strict=True):
            segment = space.segment_ids[int(index)]
            if segment != work.expected[customer].segment_id:
                note("mismatched", f"{customer}: segment {segment} at the common as-of, replay "
                     f"{work.expected[customer].segment_id}")  # fmt: skip
    for customer in set(latest) - set(work.expected):
        note("mismatched", f"{customer}: assigned, but not by the replay")
    return tally


def judge(stack: Stack, work: Workload) -> Tally:
    """A finished scenario's tally: its assignments against the replay, and its changes
    seen more than once."""
    tally = compare(latest_assignments(stack), work)
    tally.duplicated_changes = duplicate_changes(stack)
    return tally


def latest_assignments(stack: Stack) -> dict[str, dict[str, Any]]:
    """The latest value per key on ``customer-segments``."""
    return {a["customer_id"]: a for a in read_all(stack, stack.topics.assignments)}


GUARANTEES = ("at_least_once", "exactly_once")


def new_stack(
    bootstrap: str, workdir: Path, partitions: int = 4, guarantee: str = "at_least_once"
) -> Stack:
    """An isolated deployment (its own topics and group) for an exact run, its workers
    in processing mode `guarantee` (``RESCORER_PROCESSING_GUARANTEE``)."""
    stack = Stack(
        bootstrap, f"x{uuid.uuid4().hex[:8]}", workdir, partitions=partitions,
        extra_env={**EXACT_ENV, "RESCORER_PROCESSING_GUARANTEE": guarantee},
    )  # fmt: skip
    ensure_topics(WorkerSettings(**dict(stack.settings()), partitions=partitions))
    return stack


def consumed(workers: list[WorkerProcess]) -> float:
    """Valid events the live workers have consumed (this process lifetime)."""
    total = 0.0
    for worker in workers:
        if worker.alive():
            try:
                series = worker.metrics()
            except OSError:  # just started: nothing consumed yet
                continue
            total += sum(
                v for k, v in series.items() if k.startswith("rescorer_events_consumed_total{")
            )
    return total


def through(worker: WorkerProcess, partitions: int, total: int, share: float) -> Callable[[], bool]:
    """A check that `worker` is busy and, with what the workers before it did, `share`
    of the way through `total` events: its lag on all `partitions` (input it has still
    to read) is at most the rest. (Its own count alone would never reach the share when
    an earlier worker did most of the work.)"""

    def check() -> bool:
        if consumed([worker]) == 0:
            return False
        try:
            series = worker.metrics()
        except OSError:
            return False
        lag = [v for k, v in series.items() if k.startswith("rescorer_consumer_lag_messages{")]
        return len(lag) >= partitions and sum(lag) <= (1.0 - share) * total

    return check


def drained(stack: Stack, workers: list[WorkerProcess]) -> bool:
    """Whether every partition is owned by a live worker and has no input left."""
    lags: dict[str, float] = {}
    for worker in workers:
        if not worker.alive():
            continue
        try:
            series = worker.metrics()
        except OSError:  # a worker just started serves no metrics yet: not drained
            return False
        for name, value in series.items():
            if name.startswith("rescorer_consumer_lag_messages{"):
                lags[name.split('partition="')[1].split('"')[0]] = value
    return len(lags) == stack.partitions and not any(lags.values())


def wait_drained(stack: Stack, workers: list[WorkerProcess], timeout: float = 300.0) -> None:
    """Until every partition is owned by a live worker and has no input left."""
    live = next(w for w in workers if w.alive())
    wait_until("the input to be consumed", lambda: drained(stack, workers), live, timeout=timeout)
    time.sleep(2.0)  # the last batch's outputs are flushed before its position moves


def start(stack: Stack, name: str, data: str | None = None) -> WorkerProcess:
    """A worker that has joined and restored its partitions."""
    worker = WorkerProcess(stack, name, data=data)
    worker.wait_for_log("customers restored")
    return worker


def midway(workers: list[WorkerProcess], total: int, share: float = 0.3) -> Callable[[], bool]:
    """A check that the workers are `share` of the way through `total` events."""
    return lambda: consumed(workers) >= share * total


def crash(stack: Stack, work: Workload) -> Tally:
    """SIGKILL the worker a third of the way through, start a new one."""
    publish_model(stack.settings(), work.model)
    produce(stack, work.bodies)
    first = start(stack, "crash-1")
    workers = [first]
    try:
        wait_until("a third of the events", midway([first], len(work.bodies)), first, 300)
        first.kill()
        second = start(stack, "crash-2")
        workers.append(second)
        wait_drained(stack, [second])
    finally:
        for worker in workers:
            if worker.alive():
                worker.stop()
    tally = judge(stack, work)
    tally.events, tally.faults = len(work.bodies), 1
    return tally


@dataclass
class Kills:
    """What `kills_while_writing` saw besides the tally."""

    kills: int
    torn_writes: int
    """Restarts that found a store frame cut short by the kill (and dropped it)."""
    restored_from_disk: int
    """Restarts that took their partitions' records from the data directory."""
    behind: int
    """Table partitions a restart found behind their changelog (a tail replayed)."""


def kills_while_writing(
    stack: Stack, work: Workload, kills: int = 20, seed: int = 1
) -> tuple[Tally, Kills]:
    """SIGKILL the worker `kills` times while it works through a backlog, writing its store.

    Every life restores from the data directory it shares with the others, works
    for a random moment (each step writes records to the changelog and, once they
    are acknowledged, to the store's files; the sweep writes between batches)
    and is killed. A last life drains the rest.
    """
    rng = random.Random(seed)  # noqa: S311 - kill timing, not secrets
    publish_model(stack.settings(), work.model)
    produce(stack, work.bodies)
    torn = from_disk = behind = 0
    for life in range(kills + 1):
        worker = start(stack, f"life-{life}", data="shared")
        if life < kills:
            time.sleep(rng.uniform(0.1, 1.0))
            worker.kill()
        else:
            wait_drained(stack, [worker])
            worker.stop()
        log = worker.log()
        torn += log.count("dropped a torn write")
        from_disk += "keys on disk at offset" in log
        behind += sum(
            not line.rstrip().endswith(" 0 changelog records after it")
            for line in log.splitlines()
            if "changelog records after it" in line
        )
    tally = judge(stack, work)
    tally.events, tally.faults = len(work.bodies), kills
    return tally, Kills(kills, torn, from_disk, behind)


def redelivery(stack: Stack, work: Workload) -> Tally:
    """Every event produced twice: the second copy must change nothing, emit nothing."""
    publish_model(stack.settings(), work.model)
    produce(stack, work.bodies)
    worker = start(stack, "redelivery")
    try:
        wait_drained(stack, [worker])
        before = {
            t: len(read_all(stack, t)) for t in (stack.topics.changes, stack.topics.assignments)
        }
        produce(stack, work.bodies)
        wait_drained(stack, [worker])
        after = {t: len(read_all(stack, t)) for t in before}
    finally:
        worker.stop()
    tally = judge(stack, work)
    extra = sum(after[t] - before[t] for t in before)
    if extra:
        tally.double_counted += extra
        tally.examples.append(f"{extra} outputs emitted for redelivered events")
    tally.events, tally.faults = 2 * len(work.bodies), 1
    return tally


def broker_restart(stack: Stack, work: Workload, restart: Callable[[], None]) -> Tally:
    """Stop and restart the broker a third of the way through; the worker carries on."""
    publish_model(stack.settings(), work.model)
    produce(stack, work.bodies)
    worker = start(stack, "restart")
    try:
        wait_until("a third of the events", midway([worker], len(work.bodies)), worker, 300)
        restart()
        wait_drained(stack, [worker], timeout=400)
    finally:
        worker.stop()
    tally = judge(stack, work)
    tally.events, tally.faults = len(work.bodies), 1
    return tally


def malformed_mix(stack: Stack, work: Workload, rate: float = 0.01) -> tuple[Tally, int, int]:
    """1% of the messages malformed, spread through the stream: (tally, injected, dead letters)."""
    kinds = list(MALFORMED_KINDS)
    step = round(1 / rate)
    mixed: list[tuple[bytes | None, bytes]] = []
    injected = 0
    for n, body in enumerate(work.bodies):
        mixed.append((str(body["customer_id"]).encode(), json.dumps(body).encode()))
        if n % step == step - 1:
            mixed.append(malformed(body, kinds[injected % len(kinds)]))
            injected += 1
    publish_model(stack.settings(), work.model)
    worker = start(stack, "malformed")
    try:
        produce_raw(stack, mixed)
        wait_drained(stack, [worker])
        assert worker.alive()
    finally:
        worker.stop()
    tally = judge(stack, work)
    tally.events, tally.faults = len(mixed), injected
    return tally, injected, len(read_all(stack, stack.topics.dead_letters))


def rebalance(stack: Stack, work: Workload) -> Tally:
    """Two workers share the stream; one is killed a third of the way through."""
    publish_model(stack.settings(), work.model)
    first = start(stack, "rebalance-1")
    second = start(stack, "rebalance-2")
    try:
        produce(stack, work.bodies)
        wait_until("a third of the events", midway([first, second], len(work.bodies)), first, 300)
        second.kill()
        wait_drained(stack, [first], timeout=400)
    finally:
        for worker in (first, second):
            if worker.alive():
                worker.stop()
    tally = judge(stack, work)
    tally.events, tally.faults = len(work.bodies), 1
    return tally


def duplicate_changes(stack: Stack) -> int:
    """Changes emitted more than once (same customer, segment, as-of and trigger)."""
    seen = Counter(
        (c["customer_id"], c["segment_id"], c["as_of"], c.get("trigger_event_id"))
        for c in read_all(stack, stack.topics.changes)
    )
    return sum(n - 1 for n in seen.values() if n > 1)


@dataclass
class Handover:
    """What `handovers` saw besides the tally."""

    mid_step_revocations: int
    """Revocations that found a batch in flight (finished) or fetched (dropped)."""
    sigterm_seconds: float


def handovers(stack: Stack, work: Workload) -> tuple[Tally, Handover]:
    """Partitions move while the workers are in the middle of big batches.

    Three workers start together on a backlog, taking it in batches of up to
    50,000 events: whoever joins first starts on the whole of it and is
    interrupted by the others joining; a third of the way through one of them
    leaves on SIGTERM, revoking the partitions of the others in turn while they
    still have most of theirs to do (workers that start in a second or two
    may otherwise have caught up on their own by half-way). Whether a
    revocation lands in the middle of a step is a matter of timing (steps got
    faster), so while none has, a new worker joins at 40%, 50%, 60%, 70% and 80%
    of the way, each join revoking every member's partitions again, each once the
    last joiner's recovery is done (joins started together were one rebalance,
    and one run in 27 caught no step that way). No worker dies,
    so nothing may be lost, counted twice, or even emitted twice.
    """
    stack.extra_env["RESCORER_BATCH_MAX_EVENTS"] = "50000"
    publish_model(stack.settings(), work.model)
    produce(stack, work.bodies)
    workers = [WorkerProcess(stack, f"handover-{n}") for n in (1, 2, 3)]
    try:
        for worker in workers:
            worker.wait_for_log("customers restored")
        total = len(work.bodies)
        wait_until("a third of the events", midway(workers, total, 0.3), workers[0], 300)
        began = time.monotonic()
        code = workers[1].stop()
        stopped = time.monotonic() - began
        assert code == 0, f"SIGTERM exit code {code}:\n{workers[1].tail()}"
        for n, share in enumerate((0.4, 0.5, 0.6, 0.7, 0.8), start=4):
            if _mid_step(workers):
                break
            further = midway(workers, total, share)
            wait_until(f"{share:.0%} of the events (or the end)",
                       lambda f=further: f() or drained(stack, workers),  # type: ignore[misc]
                       workers[0], 300)  # fmt: skip
            if drained(stack, workers):
                break
            joining = WorkerProcess(stack, f"handover-{n}")  # its join revokes all
            workers.append(joining)
            # Joins started together make one rebalance: each waits for the last.
            joining.wait_for_log("Worker ready")  # its recovery is done, partitions or none
        wait_drained(stack, [w for w in workers if w.alive()], timeout=400)
    finally:
        for worker in workers:
            if worker.alive():
                worker.stop()
    tally = judge(stack, work)
    tally.events, tally.faults = len(work.bodies), len(workers)
    return tally, Handover(_mid_step(workers), stopped)


def _mid_step(workers: list[WorkerProcess]) -> int:
    """Revocations the workers logged that found a batch in flight or fetched."""
    return sum(
        w.log().count("partitions revoked during a step") + w.log().count("partitions revoked with")
        for w in workers
    )


@dataclass
class Zombie:
    """What `zombie` saw besides the tally."""

    refused: bool
    """The stalled worker's log says its late step was refused (its producer fenced)."""
    exit_code: int | None
    aborted_records: int
    """Records on the output topics that only a read_uncommitted consumer sees."""
    farewell: str = ""
    """The stalled worker's last CRITICAL log line (why it left)."""


REFUSED = ("were given to another worker", "ProducerFenced")


def zombie(stack: Stack, work: Workload) -> tuple[Tally, Zombie]:
    """A worker stalled (SIGSTOP) in the middle of its backlog past the session timeout:
    the group gives its partitions to a second worker, which fences it; then it is
    resumed (SIGCONT) and its step in flight must be refused, leaving nothing
    visible (exactly-once mode)."""
    publish_model(stack.settings(), work.model)
    produce(stack, work.bodies)
    first = start(stack, "zombie-1")
    workers = [first]
    try:
        wait_until("a third of the events", midway([first], len(work.bodies)), first, 300)
        first.process.send_signal(signal.SIGSTOP)
        second = start(stack, "zombie-2")  # joins once the stalled member's session expired
        workers.append(second)
        second.wait_for_log("claimed (previous owners fenced)")
        first.process.send_signal(signal.SIGCONT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            first.process.wait(timeout=60)  # it exits once its step is refused
        wait_drained(stack, [second])
    finally:
        for worker in workers:
            worker.stop()  # an exited one: its exit code, and its log closed
    refused = any(text in first.log() for text in REFUSED)
    farewell = next((ln for ln in reversed(first.log().splitlines()) if "CRITICAL" in ln), "")
    outputs = (stack.topics.changes, stack.topics.assignments)
    aborted = sum(
        len(read_all(stack, t, committed=False)) - len(read_all(stack, t)) for t in outputs
    )
    tally = judge(stack, work)
    tally.events, tally.faults = len(work.bodies), 1
    return tally, Zombie(refused, first.process.returncode, aborted, farewell)


@dataclass
class Outage:
    """What the worker did through its broker's outages."""

    crashed: bool
    """A step failed while the broker did not answer (its sends timed out)."""
    exit_code: int | None
    """Its exit code when it left (None: it carried on)."""
    carried_on: bool
    """It applied events again once the broker answered, without a restart."""
    stop_seconds: float
    """From a SIGTERM while the broker did not answer to the exit (or to giving up)."""
    stop_code: int | None
    """The exit code then (None: still running after the patience)."""


def broker_outage(
    stack: Stack, work: Workload, broker_pid: int, away: float = 75.0, patience: float = 90.0
) -> tuple[Tally, Outage]:
    """The broker stops answering (SIGSTOP) a third of the way through, for longer than
    the session timeout and the producer's request timeout (40 s, after which a step
    whose sends were not acknowledged fails), then answers again. The worker either
    carries on, or fails its step and leaves, for its supervisor (here: this function)
    to restart it on the same data directory; what it must not do is stay up doing
    nothing. The last third of the events is produced once the broker is back, so
    that there is something to carry on with even when the worker had read the
    rest before the outage began (it reads a few thousand events a second: by the
    time the outage starts it may be idle, or in the middle of a step). Later the
    broker stops answering again and the worker is told to stop: it has to leave
    rather than wait for the broker. A last worker on the same data directory
    finishes."""
    publish_model(stack.settings(), work.model)
    later = 2 * len(work.bodies) // 3
    produce(stack, work.bodies[:later])
    worker = start(stack, "outage-1", data="outage")
    workers = [worker]
    try:
        wait_until("a third of the events", midway([worker], len(work.bodies)), worker, 300)
        os.kill(broker_pid, signal.SIGSTOP)
        time.sleep(away)
        before = consumed([worker])
        os.kill(broker_pid, signal.SIGCONT)
        produce(stack, work.bodies[later:])
        wait_until(
            "the worker to carry on or to leave",
            lambda: not worker.alive() or consumed([worker]) > before,
            worker, 120,
        )  # fmt: skip
        exit_code = worker.process.poll()
        crashed, carried_on = "Crashed reason=" in worker.log(), exit_code is None
        if not carried_on:
            worker.stop()
            worker = start(stack, "outage-2", data="outage")  # the supervisor's restart
            workers.append(worker)
        further = through(worker, stack.partitions, len(work.bodies), 0.6)
        wait_until("60% of the events", further, worker, 300)
        os.kill(broker_pid, signal.SIGSTOP)
        try:
            told = time.monotonic()
            worker.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=patience)
            stop_seconds, stop_code = time.monotonic() - told, worker.process.poll()
        finally:
            os.kill(broker_pid, signal.SIGCONT)
        worker.stop()  # its log closed (and, had it hung, the process stopped)
        last = start(stack, "outage-3", data="outage")
        workers.append(last)
        wait_drained(stack, [last])
    finally:
        for each in workers:
            if each.alive():
                each.stop()
    tally = judge(stack, work)
    tally.events, tally.faults = len(work.bodies), 2
    return tally, Outage(crashed, exit_code, carried_on, stop_seconds, stop_code)
