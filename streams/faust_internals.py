"""Every place the worker relies on Faust's (and aiokafka's) internals, in one module.

Faust is run, not forked: the worker subclasses a few of its classes and
calls a few private methods where the public API has no way to say what a
batched worker needs. Each is named here with the reason, and
``tests/unit/test_faust_internals.py`` fails loudly when an upgrade of
faust-streaming or aiokafka moves one of them.
"""

from __future__ import annotations

from typing import Any

from faust.tables.manager import TableManager

FETCH_MAX_WAIT_MS = 100
"""Faust's consumer long-polls fetches for 1.5 s, and the offset requests of table
recovery queue behind that fetch on the same connection: 1.5 s per request at
every start and rebalance. The worker's Faust consumer fetches only feedback and
standby changelogs, where a tenth of a second of waiting is plenty."""


class PromptTableManager(TableManager):
    """Faust's table manager without the one-second sleep before recovery can start.

    Faust waits a second at start in case an agent still declares tables; the
    worker declares all of its tables before the app starts.
    """

    async def on_start(self) -> None:
        """`TableManager.on_start` minus ``await self.sleep(1.0)``."""
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


def shorten_fetch_wait(consumer: Any) -> Any:
    """Make a Faust-built aiokafka consumer long-poll for `FETCH_MAX_WAIT_MS` (before start)."""
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    return consumer


def standby_lag(app: Any) -> int:
    """Changelog records the standby replicas still have to apply (Faust's recovery knows)."""
    return int(app.tables.recovery.standby_remaining_total())
