"""Whether a partition's file on disk can stand for the start of its changelog.

A file reflects the changelog up to an offset, and remembers a fingerprint
of the record there. It is kept when the changelog still has that record
(then recovery reads only what follows it), and rebuilt from the changelog
when it cannot be trusted: the changelog ends before that offset (the topic
was deleted and recreated, truncated, or this is another cluster), or holds
another record at it. Like Kafka Streams, which wipes a store whose
checkpoint is past the changelog's end, and Quix Streams, which keeps the
changelog offset inside each store. Pure logic: the caller reads the bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from streams.state.log_file import Position


class WipeReason(Enum):
    """Why a partition's file was not used (the label of ``rescorer_store_wipes_total``)."""

    AHEAD = "ahead"
    """The file reflects offsets the changelog does not have."""
    FOREIGN = "foreign"
    """The changelog holds another record at the file's offset."""
    APP_ID = "app_id"
    FORMAT = "format"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Changelog:
    """What the changelog partition holds now."""

    start: int
    """The first offset still in the log."""
    end: int
    """The offset the next record will get (the high watermark)."""
    at_position: tuple[int, int] | None = None
    """(offset, fingerprint) of the first record at or after the file's offset."""


@dataclass(frozen=True)
class Judgement:
    """Keep the file (recovery replays `behind` records after it), or wipe it and why."""

    keep: bool
    behind: int = 0
    reason: WipeReason | None = None
    detail: str = ""


def judge(position: Position | None, changelog: Changelog) -> Judgement:
    """Decide about a file reflecting `position` against `changelog`.

    >>> judge(Position(9, 7), Changelog(0, 12, (9, 7)))
    Judgement(keep=True, behind=2, reason=None, detail='')
    >>> judge(Position(20, 7), Changelog(0, 12)).reason
    <WipeReason.AHEAD: 'ahead'>
    >>> judge(Position(9, 7), Changelog(0, 12, (9, 8))).reason
    <WipeReason.FOREIGN: 'foreign'>
    """
    if position is None:
        return Judgement(True, behind=changelog.end - changelog.start)
    if position.offset >= changelog.end:
        return Judgement(
            False,
            reason=WipeReason.AHEAD,
            detail=f"the file reflects offset {position.offset}, the changelog ends at "
            f"{changelog.end - 1} (deleted and recreated, truncated, or another cluster)",
        )
    found = changelog.at_position
    if found is not None and found[0] == position.offset and found[1] != position.fingerprint:
        return Judgement(
            False,
            reason=WipeReason.FOREIGN,
            detail=f"the changelog holds another record at offset {position.offset} "
            "(recreated, or another cluster)",
        )
    # A record at the offset that compaction removed (a later value of its key
    # follows) cannot be compared; what follows it is replayed either way.
    return Judgement(True, behind=changelog.end - 1 - max(position.offset, changelog.start - 1))


def unread(next_offset: int | None, start: int, end: int) -> int | None:
    """The first changelog offset a store that reflects everything before `next_offset`
    has not read, or None when it has everything up to `end` (the changelog holds
    offsets `start` to `end - 1`; None: the store has read nothing).

    >>> unread(12, 0, 12), unread(10, 0, 12), unread(None, 3, 12)
    (None, 10, 3)
    >>> unread(None, 0, 0), unread(3, 5, 12)
    (None, 5)
    """
    first = start if next_offset is None else max(next_offset, start)
    return first if first < end else None
