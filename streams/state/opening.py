"""Opening a table's partitions from disk: read, check against the changelog, keep or rebuild.

A file is kept when `streams.state.trust` says it is a prefix of its
changelog (recovery then replays what follows it); otherwise it is replaced
by an empty one, with one warning naming the reason and the store context's
listener told (``rescorer_store_wipes_total``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from streams.state.context import StoreContext
from streams.state.log_file import Contents, LogMeta, PartitionLog, Position, Unreadable, read_log
from streams.state.trust import WipeReason, judge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Opened:
    """A partition's open file, what it holds, and the changelog offset it reflects."""

    log: PartitionLog
    entries: dict[str, bytes]
    position: Position | None
    start: int = 0
    """The changelog's first offset when the partition was opened."""


def partition_path(context: StoreContext, table: str, partition: int) -> Path:
    """Where a table partition's file lives."""
    return context.directory / table / f"p{partition}.log"


def _read(path: Path, expected: LogMeta) -> Contents | tuple[WipeReason, str] | None:
    """A partition's file (None: there is none), or why it cannot be used."""
    if not path.exists():
        return None
    try:
        contents = read_log(path)
    except (OSError, Unreadable) as exc:
        return WipeReason.UNREADABLE, f"unreadable: {exc}"
    mismatch = expected.mismatch(contents.meta)
    if mismatch is None:
        return contents
    reason = WipeReason.FORMAT if contents.meta.format != expected.format else WipeReason.APP_ID
    return reason, mismatch


async def open_partitions(
    context: StoreContext, table: str, topic: str, partitions: list[int]
) -> dict[int, Opened]:
    """Open each partition's file: the one on disk if it can be trusted, else a new one."""
    began = time.perf_counter()
    metas = {p: LogMeta(context.app_id, table, topic, p) for p in partitions}
    found = {p: _read(partition_path(context, table, p), metas[p]) for p in partitions}
    looked = await context.probe.look(
        {(topic, p): f.position if isinstance(f, Contents) else None for p, f in found.items()}
    )
    opened: dict[int, Opened] = {}
    for partition, contents in found.items():
        path = partition_path(context, table, partition)
        changelog = looked[(topic, partition)]
        why = contents
        if isinstance(contents, Contents):
            verdict = judge(contents.position, changelog)
            if verdict.keep:
                opened[partition] = _keep(
                    table, partition, path, contents, verdict.behind, changelog.start
                )
                continue
            assert verdict.reason is not None  # noqa: S101 - set whenever keep is False
            why = verdict.reason, verdict.detail
        if isinstance(why, tuple):
            reason, detail = why
            log.warning(
                "store %s[%d] not used, rebuilding it from the changelog: %s",
                table, partition, detail,
            )  # fmt: skip
            context.on_wipe(table, partition, reason, detail)
        opened[partition] = Opened(
            PartitionLog.create(path, metas[partition]), {}, None, changelog.start
        )
    log.info(
        "store %s: partitions %s opened in %.2fs", table, partitions, time.perf_counter() - began
    )
    return opened


def _keep(
    table: str, partition: int, path: Path, contents: Contents, behind: int, start: int
) -> Opened:
    if contents.valid_bytes < contents.file_bytes:
        log.info(
            "store %s[%d]: dropped a torn write (%d bytes) at the end of the file",
            table, partition, contents.file_bytes - contents.valid_bytes,
        )  # fmt: skip
    log.info(
        "store %s[%d]: %d keys on disk at offset %s, %d changelog records after it",
        table, partition, len(contents.entries),
        None if contents.position is None else contents.position.offset, behind,
    )  # fmt: skip
    return Opened(PartitionLog.open(path, contents), contents.entries, contents.position, start)
