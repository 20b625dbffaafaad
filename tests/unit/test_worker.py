"""The worker's wiring: the Faust app as the settings say, the parts handed to each
other, and what the app's signals and the model watcher do to them.

A `RescorerWorker` is built, never started (nothing here connects to Kafka): the
parts that talk to the broker are tested against a real one in
``tests/integration/`` (``test_worker.py``, ``test_batch_reader.py``,
``test_catch_up.py``, ``test_transactions.py``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from schemas.model import ModelRejected
from streams.batch_reader import BatchReader
from streams.delivery import Delivery
from streams.settings import WorkerSettings
from streams.state.changelog_probe import ChangelogProbe
from streams.state.context import DataDirInUse, StoreContext
from streams.state.store import SCHEME
from streams.worker import RescorerWorker
from tests.support.toy_model import toy_model

EVENTS = "wiring-events"


def settings(tmp_path: Path, **overrides: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "app_id": "wiring-app",
        "topics": {"events": EVENTS},
        "data_dir": tmp_path,
        "partitions": 4,
        "standby_replicas": 1,
        "metrics_port": 0,
        "web_port": 0,
        **overrides,
    }
    return WorkerSettings(**values)


@pytest.fixture
def worker(tmp_path: Path) -> RescorerWorker:
    return RescorerWorker(settings(tmp_path))


def sample(worker: RescorerWorker, name: str, **labels: str) -> float | None:
    return worker.metrics.registry.get_sample_value(name, labels)


def test_the_app_is_the_one_the_settings_describe(worker: RescorerWorker) -> None:
    conf = worker.app.conf
    assert conf.id == "wiring-app"
    assert str(conf.store) == f"{SCHEME}:"
    assert conf.table_standby_replicas == 1
    assert conf.topic_partitions == 4
    # Faust's own exactly-once routes sends through the current event; ours is apart.
    assert conf.processing_guarantee.value == "at_least_once"
    assert conf.web_enabled is False
    assert conf.recovery_consistency_check is True  # at least once: no transactions
    assert worker.events in worker.app.topics  # subscribed, so the group assigns it
    assert worker.events.topics == (EVENTS,)
    assert "segment-feedback" in {
        agent.name.rsplit(".", 1)[-1] for agent in worker.app.agents.values()
    }
    assert [t.name for t in worker.tables.all] == ["customers", "centroids", "positions"]


def test_the_durable_store_has_its_context_locked_on_the_data_directory(
    worker: RescorerWorker, tmp_path: Path
) -> None:
    context = worker.store_context
    assert context is not None
    assert context.directory == tmp_path / "state"
    assert isinstance(context.probe, ChangelogProbe)
    with pytest.raises(DataDirInUse):  # a second worker on the same directory is refused
        StoreContext(tmp_path / "state", "wiring-app", context.probe, lambda *_: None).lock()
    # every table's catch-up series exists from the start, at 0
    for table in ("customers", "centroids", "positions"):
        assert sample(worker, "rescorer_store_caught_up_records_total", table=table) == 0.0


def test_the_memory_store_has_no_context(tmp_path: Path) -> None:
    worker = RescorerWorker(settings(tmp_path, store="memory://"))
    assert worker.store_context is None
    assert str(worker.app.conf.store) == "memory:"


def test_the_parts_share_the_tables_state_and_delivery(worker: RescorerWorker) -> None:
    assert isinstance(worker.reader, BatchReader) and worker.reader.topic == EVENTS
    assert isinstance(worker.delivery, Delivery)
    pipeline = worker.pipeline
    assert pipeline.delivery is worker.delivery
    assert pipeline.tables is worker.tables
    assert pipeline.state is worker.state
    assert pipeline.ownership is worker.ownership
    feedback = worker.feedback.feedback
    assert feedback.delivery is worker.delivery and feedback.tables is worker.tables
    assert feedback.state is worker.state and feedback.metrics is worker.metrics
    assert worker.store_context is not None and worker.store_context.claim is None


def test_in_exactly_once_mode_the_store_claims_through_the_delivery(tmp_path: Path) -> None:
    worker = RescorerWorker(settings(tmp_path, processing_guarantee="exactly_once"))
    assert worker.store_context is not None
    assert worker.store_context.claim == worker.delivery.claim
    assert str(worker.app.conf.processing_guarantee.value) == "at_least_once"
    # Faust's check reads the last stable offset, which lags a step just committed.
    assert worker.app.conf.recovery_consistency_check is False
    info = sample(worker, "rescorer_worker_info", worker_id=worker.settings.worker_id,
                  app_id="wiring-app", version=worker.metrics.info._value["version"],
                  clock=worker.settings.clock, store="rescorer://",
                  processing_guarantee="exactly_once")  # fmt: skip
    assert info == 1.0


def test_the_first_model_loads_and_a_later_one_switches(worker: RescorerWorker) -> None:
    asyncio.run(worker.on_model(toy_model(version=3)))
    assert worker.state.model_ready.is_set()
    assert sample(worker, "rescorer_model_version") == 3.0
    assert worker.metrics.name(0) == "Champions"
    rescorer = worker.state.rescorer
    assert rescorer is not None and rescorer.model.version == 3

    renamed = toy_model(version=4, names=("Best", "Regular", "At Risk"))
    asyncio.run(worker.on_model(renamed))
    assert worker.state.rescorer is not None and worker.state.rescorer.model.version == 4
    assert sample(worker, "rescorer_model_version") == 4.0
    assert worker.metrics.name(0) == "Best"  # populations are reported under the new names


def test_a_refused_model_is_counted_and_the_current_one_stays(worker: RescorerWorker) -> None:
    asyncio.run(worker.on_model(toy_model(version=3)))
    worker.on_model_rejected(ModelRejected("signature does not verify", "bad_signature"))
    assert sample(worker, "rescorer_models_rejected_total", reason="bad_signature") == 1.0
    assert sample(worker, "rescorer_models_rejected_total", reason="unsigned") == 0.0
    assert sample(worker, "rescorer_model_version") == 3.0


def test_an_assignment_passes_on_the_event_partitions_and_a_revocation_stops_reading(
    worker: RescorerWorker,
) -> None:
    assigned = {TP(EVENTS, 2), TP(EVENTS, 0), TP("wiring-app-customers-changelog", 2)}

    async def scenario() -> tuple[Any, Any]:
        await worker._on_assigned(None, assigned, signal=None)
        before = worker.ownership.pending
        await worker._on_revoked(None, set(), signal=None)  # delivery not started: no flush
        return before, worker.ownership.pending

    before, after = asyncio.run(scenario())
    assert before == {0, 2}
    assert after is None  # the assignment is dropped until the next one
    assert not worker.ownership.reading


def test_the_drift_tick_waits_for_a_model_and_partitions_being_read(
    worker: RescorerWorker,
) -> None:
    ticks: list[tuple[Any, set[int], dict[int, int]]] = []

    class Drift:
        async def tick(self, rescorer: Any, monitor: Any, owned: Any, lag: Any) -> None:
            ticks.append((rescorer, set(owned), lag))

    worker.drift = Drift()  # type: ignore[assignment]
    asyncio.run(worker._drift_tick())  # no model yet
    asyncio.run(worker.on_model(toy_model()))
    asyncio.run(worker._drift_tick())  # a model, but no partition being read
    assert ticks == []
    worker.ownership.reading = True  # as after a restore; nothing owned, so no lag to read
    asyncio.run(worker._drift_tick())
    assert ticks == [(worker.state.rescorer, set(), {})]
    # the store and standby gauges are published on every tick, read or not
    assert sample(worker, "rescorer_standby_lag_records") == 0.0
