"""Leaving a process whose threads may not stop: the exit code arrives regardless.

The worker's consumer thread (Faust's `ServiceThread`, not a daemon) runs its
own event loop. When the broker is unreachable and the worker has crashed or
stopped, that loop can stay busy with a request that never returns, and the
interpreter's exit waits for the thread for as long: a crashed worker stays up,
a supervisor never restarts it, and the thread may keep the group's partitions.
`leave` waits a bounded time for such threads, then exits without them.
Nothing a step wrote depends on them: the worker survives a SIGKILL at any
point (the exactness scenarios), and this is no worse.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import NoReturn

log = logging.getLogger(__name__)
STRAGGLER_SECONDS = 10.0


def stragglers() -> list[threading.Thread]:
    """Threads the interpreter's exit would wait for."""
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]


def leave(code: int, deadline: float = STRAGGLER_SECONDS) -> NoReturn:
    """Exit with `code`, waiting at most `deadline` seconds for threads still running."""
    end = time.monotonic() + deadline
    for thread in stragglers():
        thread.join(max(0.0, end - time.monotonic()))
    left = stragglers()
    if not left:
        raise SystemExit(code)
    log.error(
        "threads %s still running %.0f s after the worker stopped (an unreachable broker?); "
        "exiting (code %d) without them",
        ", ".join(t.name for t in left), deadline, code,
    )  # fmt: skip
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
