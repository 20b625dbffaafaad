"""Nothing lost, nothing counted twice: crashes, redelivery, broker restarts, rebalances.

Each scenario's final ``customer-segments`` is compared with `rescorer replay`'s
core over the same events (see `tests/support/exactness.py`), in both processing
modes; in exactly-once mode a read_committed consumer must also see each change
once (per customer, segment, as-of and trigger event), whatever the fault.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rescorer.devkafka import ProvidedBroker
from rescorer.devkafka.local import LocalKafka
from streams.worker import EXIT_REFUSED
from tests.support.exactness import (
    GUARANTEES,
    Tally,
    Workload,
    broker_outage,
    broker_restart,
    crash,
    handovers,
    kills_while_writing,
    malformed_mix,
    new_stack,
    rebalance,
    redelivery,
    workload,
    zombie,
)
from tests.support.worker_harness import Stack

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.slow]


@pytest.fixture(scope="module")
def large() -> Workload:
    """At least 100k events (about 24k purchases) for 5,000 customers over 200 days."""
    work = workload(5_000)
    assert len(work.bodies) >= 100_000
    return work


@pytest.fixture(scope="module")
def small() -> Workload:
    return workload(1_500, seed=5)


@pytest.fixture(params=GUARANTEES)
def guarantee(request: pytest.FixtureRequest) -> str:
    """``RESCORER_PROCESSING_GUARANTEE`` of the scenario's workers."""
    return str(request.param)


def assert_exact(tally: Tally, stack: Stack | None = None) -> None:
    """Exact state; in exactly-once mode (`stack` given) every change seen once."""
    assert tally.exact, f"{tally.result_line()}\n" + "\n".join(tally.examples)
    if stack is not None and stack.extra_env["RESCORER_PROCESSING_GUARANTEE"] == "exactly_once":
        assert tally.duplicated_changes == 0, tally.result_line()


@pytest.mark.parametrize(
    ("scenario", "size"),
    [
        pytest.param(crash, "large", id="a worker killed mid-stream and restarted"),
        pytest.param(redelivery, "small", id="every event delivered twice"),
        pytest.param(rebalance, "small", id="two workers, one killed mid-stream"),
    ],
)
def test_a_fault_mid_stream_ends_exactly_like_the_replay(
    kafka: ProvidedBroker,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    scenario: Callable[[Stack, Workload], Tally],
    size: str,
    guarantee: str,
) -> None:
    work: Workload = request.getfixturevalue(size)
    stack = new_stack(kafka.bootstrap_servers, tmp_path, guarantee=guarantee)
    assert_exact(scenario(stack, work), stack)


def test_partitions_handed_over_in_the_middle_of_batches_lose_and_duplicate_nothing(
    kafka: ProvidedBroker, tmp_path: Path, guarantee: str
) -> None:
    backlog = workload(20_000, seed=9)  # about 450k events: seconds of work for each worker
    stack = new_stack(kafka.bootstrap_servers, tmp_path, partitions=6, guarantee=guarantee)
    tally, seen = handovers(stack, backlog)
    assert_exact(tally, stack)
    assert tally.duplicated_changes == 0  # no worker dies: nothing emitted twice in either mode
    assert seen.mid_step_revocations >= 1, "no revocation caught a worker in the middle of a step"
    assert seen.sigterm_seconds < 10


def test_killed_while_writing_its_store_again_and_again_loses_and_doubles_nothing(
    kafka: ProvidedBroker, tmp_path: Path, guarantee: str
) -> None:
    work = workload(12_000, seed=11)  # about 270k events: a backlog for twenty lives
    stack = new_stack(kafka.bootstrap_servers, tmp_path, guarantee=guarantee)
    tally, seen = kills_while_writing(stack, work, kills=20)
    assert_exact(tally, stack)
    assert seen.kills == 20
    assert seen.restored_from_disk >= 20, "restarts did not use the data directory"
    assert seen.behind >= 1, "no kill left a store behind its changelog: none hit mid-step"


def test_one_percent_malformed_traffic_is_all_dead_lettered_and_the_rest_exact(
    kafka: ProvidedBroker, tmp_path: Path, small: Workload, guarantee: str
) -> None:
    stack = new_stack(kafka.bootstrap_servers, tmp_path, guarantee=guarantee)
    tally, injected, dead = malformed_mix(stack, small)
    assert injected >= 100
    assert dead == injected
    assert_exact(tally, stack)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own, to stop and restart."""
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.skip("restarting a broker needs the local Kafka (Java 17 and Maven)")
    broker = LocalKafka(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def test_a_broker_restart_mid_stream_needs_no_manual_action_and_loses_nothing(
    own_broker: LocalKafka, tmp_path: Path, small: Workload, guarantee: str
) -> None:
    def restart() -> None:
        own_broker.stop(keep_data=True)
        time.sleep(5)
        own_broker.start()

    stack = new_stack(own_broker.bootstrap_servers, tmp_path, guarantee=guarantee)
    assert_exact(broker_restart(stack, small, restart), stack)


def test_a_broker_that_stops_answering_is_waited_for_or_left_and_a_stop_is_prompt(
    own_broker: LocalKafka, tmp_path: Path, small: Workload
) -> None:
    """Through an outage the worker carries on, or fails its step and exits (code 1)
    while the broker is still away, even though Faust's consumer thread is stuck on
    the broker (`rescorer.leaving`); told to stop during an outage, it leaves within
    a bound; and the workers after it lose and double nothing."""
    stack = new_stack(own_broker.bootstrap_servers, tmp_path)
    assert own_broker.pid is not None
    tally, outage = broker_outage(stack, small, own_broker.pid)
    if outage.crashed:
        assert outage.exit_code == 1, outage
    else:
        assert outage.carried_on, outage
    assert outage.stop_code is not None, f"still running {outage.stop_seconds:.0f} s after SIGTERM"
    assert_exact(tally, stack)


def test_a_stalled_worker_is_fenced_and_its_late_step_is_refused(
    kafka: ProvidedBroker, tmp_path: Path, large: Workload
) -> None:
    """Exactly once: SIGSTOP past the session timeout, the partitions move, SIGCONT."""
    stack = new_stack(kafka.bootstrap_servers, tmp_path, guarantee="exactly_once")
    tally, seen = zombie(stack, large)
    assert seen.refused, f"the resumed worker's step was not refused: {seen.farewell!r}"
    assert seen.exit_code == EXIT_REFUSED, seen
    assert_exact(tally, stack)
