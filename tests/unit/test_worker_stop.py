"""A worker's stop finishes its last step once, and whoever else asks waits for it.

Both the app's stop and a rebalance that begins while the worker stops (Faust
then skips the worker's own revocation handler) await the same finishing, so
the partitions are handed over only after the last step is durable.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

from streams.worker import EXIT_UNSTOPPED, _PipelineService


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


def test_a_stop_that_does_not_end_exits_the_process_at_its_deadline() -> None:
    """A stop stuck on an unreachable broker ends at the deadline, with a reason."""
    code = (
        "import logging, time\n"
        "logging.basicConfig()\n"
        "from streams.worker import exit_if_not_stopped\n"
        "exit_if_not_stopped(0.3)\n"
        "time.sleep(30)\n"
    )
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == EXIT_UNSTOPPED
    assert "had not stopped 0 s after it began to" in done.stderr
    assert time.monotonic() - began < 25  # the sleep did not run out


def test_a_service_calls_its_stopping_hook_once_when_its_stop_begins() -> None:
    stopping: list[int] = []

    async def scenario() -> None:
        service = _PipelineService(fake_worker(Recorder()), lambda: stopping.append(1))
        await asyncio.gather(service.finish(), service.finish())
        await service.finish()

    asyncio.run(scenario())
    assert stopping == [1]
