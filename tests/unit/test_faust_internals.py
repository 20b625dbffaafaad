"""Every Faust and aiokafka internal the worker relies on is still there, as it was.

`streams/faust_internals.py` names each one with its reason. An upgrade of
faust-streaming or aiokafka that moves or reshapes one of them fails here,
by name, before a worker misbehaves in a way only an integration run shows.
"""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import aiokafka
import pytest
from aiokafka.errors import ProducerFenced
from faust.app.base import App
from faust.stores.base import Store
from faust.stores.memory import Store as MemoryStore
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams import faust_internals
from streams.faust_internals import (
    FETCH_MAX_WAIT_MS,
    FaustGroup,
    GenerationRecovery,
    PromptTableManager,
    producer_fenced,
    read_committed,
    shorten_fetch_wait,
)


@pytest.mark.parametrize(
    ("owner", "name", "parameters"),
    [
        (faust_aiokafka.Consumer, "_new_consumer_thread", ["self"]),
        (faust_aiokafka.Consumer, "_set_active_tps", ["self", "tps"]),
        (faust_aiokafka.Consumer, "resume_partitions", ["self", "tps"]),
        (faust_aiokafka.Consumer, "on_buffer_drop", ["self", "tp"]),
        (faust_aiokafka.Consumer, "_commit", ["self", "offsets"]),
        (faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer", ["self", "transport"]),
        (
            faust_aiokafka.AIOKafkaConsumerThread,
            "on_partitions_assigned",
            ["self", "assigned", "generation_id"],
        ),
        (faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer", ["self"]),
        (TableManager, "_update_channels", ["self"]),
        (Recovery, "standby_remaining", ["self"]),
        (Recovery, "on_recovery_completed", ["self", "generation_id"]),
        (Store, "persisted_offset", ["self", "tp"]),
        (Store, "on_rebalance", ["self", "assigned", "revoked", "newly_assigned", "generation_id"]),
        (Store, "on_recovery_completed", ["self", "active_tps", "standby_tps"]),
        (App, "_stop_consumer", ["self"]),
        (App, "_on_partitions_revoked", ["self", "revoked"]),
    ],
)
def test_a_method_the_worker_overrides_or_calls_has_its_signature(
    owner: type, name: str, parameters: list[str]
) -> None:
    method = getattr(owner, name, None)
    assert method is not None, f"{owner.__qualname__}.{name} is gone"
    assert list(inspect.signature(method).parameters) == parameters, f"{owner.__name__}.{name}"


def test_faust_still_sleeps_a_second_before_table_recovery_and_the_override_skips_only_that() -> (
    None
):
    source = inspect.getsource(TableManager.on_start)
    assert "await self.sleep(1.0)" in source
    assert "self._update_channels()" in source and "self.recovery.start()" in source
    assert PromptTableManager.on_start is not TableManager.on_start


def test_faust_stops_its_tables_before_the_apps_children() -> None:
    """Why the pipeline finishes in `App.on_stop` (`streams.worker._App`), not later."""
    assert "self.tables.stop()" in inspect.getsource(App._stop_consumer)
    assert "self._stop_consumer()" in inspect.getsource(App.on_stop)


def test_the_memory_store_keeps_each_keys_partition() -> None:
    assert "self._key_partition" in inspect.getsource(MemoryStore.__post_init__)
    assert "_key_partition" in inspect.getsource(MemoryStore.on_recovery_completed)


def test_aiokafka_reads_its_fetch_wait_from_the_consumer_at_start() -> None:
    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in inspect.getsource(
        aiokafka.AIOKafkaConsumer.__init__
    )
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(
        aiokafka.AIOKafkaConsumer.start
    )
    consumer = SimpleNamespace(_fetch_max_wait_ms=1500)
    assert shorten_fetch_wait(consumer)._fetch_max_wait_ms == FETCH_MAX_WAIT_MS


def test_aiokafka_reads_its_isolation_level_from_the_consumer_at_start() -> None:
    assert "self._isolation_level = isolation_level" in inspect.getsource(
        aiokafka.AIOKafkaConsumer.__init__
    )
    assert "isolation_level=self._isolation_level" in inspect.getsource(
        aiokafka.AIOKafkaConsumer.start
    )
    consumer = SimpleNamespace(_isolation_level="read_uncommitted")
    assert read_committed(consumer)._isolation_level == "read_committed"


def test_faust_reads_uncommitted_records_outside_its_own_transactions() -> None:
    """What `read_committed` corrects: Faust's recovery would apply aborted records."""
    source = inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert 'isolation_level: str = "read_uncommitted"' in source
    assert "if self.consumer.in_transaction:" in source


def test_faust_builds_the_worker_consumer_with_a_long_fetch_wait() -> None:
    """What `shorten_fetch_wait` corrects (if Faust made it configurable, use that)."""
    source = inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=1500" in source


def test_the_module_lists_what_it_provides() -> None:
    names = {"aside_consumer", "commit_offsets", "remember_partition", "partition_of_keys",
             "standby_lag", "shorten_fetch_wait", "read_committed", "PromptTableManager",
             "GenerationRecovery", "FaustGroup", "producer_fenced"}  # fmt: skip
    assert names <= set(vars(faust_internals))


def test_faust_ends_a_rebalance_after_checking_a_generation_the_consumer_may_not_know() -> None:
    """Why `GenerationRecovery` exists: ``app.rebalancing`` goes False at the end of a
    recovery whose generation check passed, even if the next rebalance has begun."""
    completed = inspect.getsource(Recovery.on_recovery_completed)
    assert "self.app.consumer_generation_id != generation_id" in completed
    assert "self.app.on_rebalance_end()" in completed
    assert "self.rebalancing = True" in inspect.getsource(App.on_rebalance_start)
    assert "self.rebalancing_count += 1" in inspect.getsource(App.on_rebalance_start)
    assert "self.rebalancing = False" in inspect.getsource(App.on_rebalance_end)


def test_the_recovery_remembers_the_generation_it_completed_only_while_it_is_current() -> None:
    app = SimpleNamespace(consumer_generation_id=5)
    recovery = object.__new__(GenerationRecovery)
    recovery.app = app  # type: ignore[assignment]

    async def completed(self: Recovery, generation_id: int = 0) -> None:
        app.consumer_generation_id = 6  # the next assignment arrived meanwhile

    original = Recovery.on_recovery_completed
    try:
        Recovery.on_recovery_completed = completed  # type: ignore[method-assign]
        asyncio.run(recovery.on_recovery_completed(5))
        assert recovery.recovered_generation is None
        asyncio.run(recovery.on_recovery_completed(6))
        assert recovery.recovered_generation == 6
    finally:
        Recovery.on_recovery_completed = original  # type: ignore[method-assign]
    assert PromptTableManager.recovery.fget is not TableManager.recovery.fget  # type: ignore[attr-defined]


def test_the_group_view_reads_the_apps_counters() -> None:
    recovery = object.__new__(GenerationRecovery)
    recovery.recovered_generation = 3
    app = SimpleNamespace(
        rebalancing=True, rebalancing_count=9, consumer_generation_id=4,
        tables=SimpleNamespace(recovery=recovery),
    )  # fmt: skip
    group = FaustGroup(app)  # type: ignore[arg-type]
    assert (group.rebalancing(), group.revocations(), group.generation()) == (True, 9, 4)
    assert group.recovered_generation() == 3


def test_standby_lag_counts_each_partition_at_least_zero() -> None:
    """Faust's remaining goes negative once a standby reads past its start's end offset."""
    assert "highwater - offsets[tp]" in inspect.getsource(Recovery.standby_remaining)
    recovery = SimpleNamespace(standby_remaining=lambda: {"a": -560, "b": 12, "c": 0})
    assert (
        faust_internals.standby_lag(SimpleNamespace(tables=SimpleNamespace(recovery=recovery)))
        == 12
    )


def test_a_fenced_aiokafka_producer_asserts_on_its_next_transaction() -> None:
    """Why `producer_fenced` reads the sender task: once the sender ends with
    ``ProducerFenced``, the transaction manager is fatal and the next begin or
    commit fails on an assertion, not with ``ProducerFenced``."""
    from aiokafka.producer.sender import Sender
    from aiokafka.producer.transaction_manager import TransactionManager, TransactionState

    assert "self._txn_manager.fatal_error(task_exception)" in inspect.getsource(Sender._fail_all)

    async def check() -> None:
        manager = TransactionManager("app-step-0", 60_000)
        manager.state = TransactionState.READY
        manager.begin_transaction()
        manager.fatal_error(ProducerFenced())
        with pytest.raises(AssertionError):
            manager.committing_transaction()
        with pytest.raises(AssertionError):
            manager.begin_transaction()

    asyncio.run(check())


async def _ended(exc: BaseException | None) -> asyncio.Task[None]:
    async def run() -> None:
        if exc is not None:
            raise exc

    task = asyncio.ensure_future(run())
    await asyncio.wait([task])
    return task


@pytest.mark.parametrize(
    ("ending", "fenced"),
    [(ProducerFenced(), True), (ConnectionError("gone"), False), (None, False)],
)
def test_a_producer_is_fenced_when_its_sender_ended_with_producer_fenced(
    ending: BaseException | None, fenced: bool
) -> None:
    async def check() -> None:
        task = await _ended(ending)
        assert producer_fenced(SimpleNamespace(_sender=SimpleNamespace(sender_task=task))) is fenced

    asyncio.run(check())


def test_a_producer_whose_sender_runs_or_never_started_is_not_fenced() -> None:
    async def check() -> None:
        running = asyncio.ensure_future(asyncio.sleep(10))
        assert not producer_fenced(SimpleNamespace(_sender=SimpleNamespace(sender_task=running)))
        running.cancel()
        await asyncio.wait([running])
        assert not producer_fenced(SimpleNamespace(_sender=SimpleNamespace(sender_task=running)))
        unstarted = aiokafka.AIOKafkaProducer(transactional_id="app-step-0")
        assert not producer_fenced(unstarted)
        await unstarted.stop()

    asyncio.run(check())
