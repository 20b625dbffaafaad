"""What every table store of one worker shares: its directory, app id, probe and listener."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from streams.state.changelog_probe import ChangelogProbe
from streams.state.trust import WipeReason

WipeListener = Callable[[str, int, WipeReason, str], None]
Claim = Callable[[Iterable[int]], Awaitable[None]]
"""Exactly once: own the transactional ids of these active partitions (fencing their
previous owners) before their changelogs are read (`streams.delivery.Delivery.claim`)."""


class DataDirInUse(RuntimeError):
    """Another worker holds the data directory."""


@dataclass
class StoreContext:
    """What every table's store of one worker shares: where, whose, and who to tell."""

    directory: Path
    app_id: str
    probe: ChangelogProbe
    on_wipe: WipeListener = lambda table, partition, reason, detail: None
    claim: Claim | None = None
    """Set in exactly-once mode: the active partitions are claimed, then every store
    reads its changelogs to their committed end itself (`streams.state.store`)."""
    _lock_fd: int = field(default=-1, repr=False)

    def lock(self) -> None:
        """Take the directory for this process (`DataDirInUse` if another one has it)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DataDirInUse(
                f"data directory {self.directory.parent} is in use by worker pid {holder}: "
                "each worker needs a data directory of its own (RESCORER_DATA_DIR)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the directory."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
