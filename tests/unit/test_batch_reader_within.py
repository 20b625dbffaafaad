"""`streams.batch_reader.within`: a bound on work that may ignore its cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from streams.batch_reader import within


async def stubborn(release: asyncio.Event) -> str:
    """Work that swallows cancellation, as a stuck client's stop can."""
    while not release.is_set():
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            continue
    return "released"


def test_work_that_ignores_its_cancellation_is_left_behind_at_the_deadline() -> None:
    async def scenario() -> float:
        release = asyncio.Event()
        began = time.monotonic()
        with pytest.raises(TimeoutError, match="not done in 0 s"):
            await within(stubborn(release), 0.2)
        took = time.monotonic() - began
        release.set()
        await asyncio.sleep(0.1)
        return took

    # asyncio.wait_for would wait for the stubborn work until it was released: for ever.
    assert asyncio.run(scenario()) < 2.0


def test_work_that_ends_in_time_gives_its_result_or_its_error() -> None:
    async def fails() -> None:
        raise ValueError("broken")

    async def scenario() -> str:
        with pytest.raises(ValueError, match="broken"):
            await within(fails(), 1.0)
        return await within(asyncio.sleep(0.01, result="done"), 1.0)

    assert asyncio.run(scenario()) == "done"
