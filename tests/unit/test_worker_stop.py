"""A worker's stop finishes its last step once, and whoever else asks waits for it.

Both the app's stop and a rebalance that begins while the worker stops (Faust
then skips the worker's own revocation handler) await the same finishing, so
the partitions are handed over only after the last step is durable.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from streams.worker import _PipelineService


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []


def fake_worker(recorder: Recorder) -> Any:
    finished = asyncio.Event()

    async def stop_delivery() -> None:
        await asyncio.sleep(0.05)  # the last flush takes a while
        recorder.calls.append("delivery stopped")

    async def commit(force: bool = False) -> None:
        recorder.calls.append("committed")

    async def stop_reader() -> None:
        recorder.calls.append("reader stopped")

    def stop_pipeline() -> None:
        recorder.calls.append("pipeline stopping")
        finished.set()

    return SimpleNamespace(
        pipeline=SimpleNamespace(stop=stop_pipeline, finished=finished, commit=commit),
        delivery=SimpleNamespace(started=True, stop=stop_delivery),
        reader=SimpleNamespace(stop=stop_reader),
        store_context=None,
    )


def test_a_second_caller_waits_for_the_first_finish_and_nothing_runs_twice() -> None:
    recorder = Recorder()

    async def scenario() -> list[str]:
        service = _PipelineService(fake_worker(recorder))
        done: list[str] = []

        async def caller(name: str) -> None:
            await service.finish()
            done.append(f"{name} returned after {len(recorder.calls)} calls")

        await asyncio.gather(caller("stop"), caller("revocation while stopping"))
        await service.finish()  # and later: nothing more
        return done

    done = asyncio.run(scenario())
    assert recorder.calls == [
        "pipeline stopping",
        "delivery stopped",
        "committed",
        "reader stopped",
    ]
    assert done == [
        "stop returned after 4 calls",
        "revocation while stopping returned after 4 calls",
    ]


def test_a_worker_that_never_started_delivering_has_nothing_to_finish() -> None:
    recorder = Recorder()
    worker = fake_worker(recorder)
    worker.delivery.started = False
    asyncio.run(_PipelineService(worker).finish())
    assert recorder.calls == []
