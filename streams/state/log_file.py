"""One table partition on disk: an append-only file of checksummed frames.

A worker's durable copy of a table partition is the changelog's prefix up to
some offset. The file says which: every frame carries the entries it adds and
the changelog offset (with a fingerprint of the record there) that the file
reflects once the frame is in. So data and offset land together, in one
``write``, and a file is always some prefix of its changelog.

Layout: ``MAGIC``, a header frame (JSON: format, app id, table, changelog
topic, partition), then data frames. A frame is ``<u32 length, u32 crc32>``
and a body: a kind byte (``S``napshot: replaces everything before it,
``D``elta: adds to it), ``<i64 offset, u32 fingerprint, u32 count>``, the key
and value lengths (``-1``: the key was deleted), the keys, the values.

Reading stops at the first frame that is incomplete or fails its checksum at
the end of the file, or is zeros to the end: the tail of a write that a
crash (or a power cut) interrupted. Anything else that fails its checksum is
corruption, and the whole file is refused (`Unreadable`).

Compaction rewrites a file as one snapshot frame, in a temporary file renamed
over the old one once it is on disk, so there is never a moment without a
whole file. Plain file I/O: no Faust, no Kafka.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate, pairwise
from pathlib import Path

MAGIC = b"RSSTORE\n"
STORE_FORMAT = 1
"""The on-disk format version; a file of another version is rebuilt from the changelog."""
_FRAME = struct.Struct("<II")
_DATA = struct.Struct("<qII")
_SNAPSHOT = b"S"
_DELTA = b"D"
_HEADER = b"H"
_DELETED = -1
_BIG_ENDIAN = sys.byteorder == "big"
assert array("I").itemsize == array("i").itemsize == 4  # noqa: S101 - lengths are 32-bit


class Unreadable(ValueError):
    """A store file that is not one of ours, or is corrupted."""


@dataclass(frozen=True)
class LogMeta:
    """What a file must belong to; a file of anything else is not used."""

    app_id: str
    table: str
    topic: str
    partition: int
    format: int = STORE_FORMAT

    def encode(self) -> bytes:
        """The header frame's body."""
        fields = {"format": self.format, "app_id": self.app_id, "table": self.table,
                  "topic": self.topic, "partition": self.partition}  # fmt: skip
        return _HEADER + json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def decode(cls, body: bytes) -> LogMeta:
        """Parse a header frame's body (`Unreadable` if it is not one)."""
        try:
            if body[:1] != _HEADER:
                raise ValueError("no header frame")
            fields = json.loads(body[1:])
            return cls(str(fields["app_id"]), str(fields["table"]), str(fields["topic"]),
                       int(fields["partition"]), int(fields["format"]))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise Unreadable(f"bad header: {exc}") from exc

    def mismatch(self, found: LogMeta) -> str | None:
        """Why a file with header `found` cannot serve as this partition (None: it can)."""
        if found.format != self.format:
            return f"on-disk format {found.format}, this worker writes {self.format}"
        if found.app_id != self.app_id:
            return f"written by app id {found.app_id!r}, this worker is {self.app_id!r}"
        if (found.table, found.topic, found.partition) != (self.table, self.topic, self.partition):
            return f"holds {found.topic}[{found.partition}], not {self.topic}[{self.partition}]"
        return None


@dataclass(frozen=True)
class Position:
    """The changelog offset a file reflects, with the fingerprint of the record there."""

    offset: int
    fingerprint: int


def fingerprint(key: bytes | None, value: bytes | None) -> int:
    """CRC-32 of a changelog record's key and value (which record sits at an offset)."""
    crc = zlib.crc32(key or b"")
    return zlib.crc32(value or b"", crc)


@dataclass
class Contents:
    """What a file holds, as far as it is whole."""

    meta: LogMeta
    entries: dict[str, bytes]
    position: Position | None
    valid_bytes: int
    """Length of the whole part; anything after it was a torn write."""
    file_bytes: int


def encode_frame(
    entries: Iterable[tuple[str, bytes | None]], position: Position, *, snapshot: bool = False
) -> bytes:
    """A data frame adding `entries` (None: deleted) and moving the file to `position`."""
    keys: list[bytes] = []
    values: list[bytes] = []
    value_lengths = array("i")
    for key, value in entries:
        keys.append(key.encode())
        if value is None:
            value_lengths.append(_DELETED)
        else:
            values.append(value)
            value_lengths.append(len(value))
    key_lengths = array("I", map(len, keys))
    body = b"".join(
        (
            _SNAPSHOT if snapshot else _DELTA,
            _DATA.pack(position.offset, position.fingerprint, len(keys)),
            key_lengths.tobytes(),
            value_lengths.tobytes(),
            b"".join(keys),
            b"".join(values),
        )
    )
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def _framed(body: bytes) -> bytes:
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def _lengths(code: str, data: bytes, at: int, count: int) -> array[int]:
    """`count` little-endian 32-bit lengths at byte `at` of `data`."""
    lengths = array(code)
    lengths.frombytes(data[at : at + 4 * count])
    if _BIG_ENDIAN:
        lengths.byteswap()
    return lengths


def _apply(data: bytes, start: int, entries: dict[str, bytes]) -> Position:
    """Fold the data frame whose body starts at `start` into `entries`; where it moves to."""
    offset, print_, count = _DATA.unpack_from(data, start + 1)
    if data[start : start + 1] == _SNAPSHOT:
        entries.clear()
    if not count:
        return Position(offset, print_)
    at = start + 1 + _DATA.size
    key_lengths = _lengths("I", data, at, count)
    value_lengths = _lengths("i", data, at + 4 * count, count)
    keys_at = at + 8 * count
    key_ends = list(accumulate(key_lengths))
    key_starts = [0, *key_ends[:-1]]
    key_blob = data[keys_at : keys_at + key_ends[-1]]
    if key_blob.isascii():  # one decode, then character offsets equal byte offsets
        text = key_blob.decode()
        keys = [text[a:b] for a, b in zip(key_starts, key_ends, strict=True)]
    else:
        keys = [key_blob[a:b].decode() for a, b in zip(key_starts, key_ends, strict=True)]
    values_at = keys_at + key_ends[-1]
    if min(value_lengths) >= 0:
        value_ends = list(accumulate(value_lengths, initial=values_at))
        values = [data[a:b] for a, b in pairwise(value_ends)]
        entries.update(zip(keys, values, strict=True))
        return Position(offset, print_)
    cursor = values_at
    for key, length in zip(keys, value_lengths, strict=True):
        if length == _DELETED:
            entries.pop(key, None)
        else:
            entries[key] = data[cursor : cursor + length]
            cursor += length
    return Position(offset, print_)


def read_log(path: Path, limit: int | None = None) -> Contents:
    """Everything whole in the file at `path` (up to byte `limit`); `Unreadable` if corrupt."""
    with path.open("rb") as handle:
        data = handle.read() if limit is None else handle.read(limit)
    if not data.startswith(MAGIC):
        raise Unreadable("not a store file (no magic bytes)")
    at = len(MAGIC)
    end = _frame_at(data, at)
    if end is None:
        raise Unreadable("no header frame")
    meta = LogMeta.decode(data[at + _FRAME.size : end])
    entries: dict[str, bytes] = {}
    position: Position | None = None
    at = end
    while at < len(data):
        end = _frame_at(data, at)
        if end is None:
            break
        start = at + _FRAME.size
        if data[start : start + 1] not in (_SNAPSHOT, _DELTA):
            raise Unreadable(f"frame of unknown kind {data[start : start + 1]!r} at byte {at}")
        position = _apply(data, start, entries)
        at = end
    return Contents(meta, entries, position, at, len(data))


def _frame_at(data: bytes, at: int) -> int | None:
    """Where the whole frame at `at` ends; None for a torn tail (`Unreadable` if corrupt)."""
    if at + _FRAME.size > len(data):
        return None
    length, crc = _FRAME.unpack_from(data, at)
    end: int = at + _FRAME.size + length
    if end > len(data):
        return None
    if length and zlib.crc32(memoryview(data)[at + _FRAME.size : end]) == crc:
        return end
    if end == len(data) or not data[at:].strip(b"\0"):
        return None  # the last write, cut short; or zeros a power cut left
    raise Unreadable(f"frame at byte {at} fails its checksum")


class PartitionLog:
    """The open file of one table partition: appended to, compacted, wiped."""

    def __init__(self, path: Path, meta: LogMeta, size: int, snapshot_bytes: int) -> None:
        self.path = path
        self.meta = meta
        self.size = size
        self.snapshot_bytes = snapshot_bytes
        """Size right after the last compaction (or open): what growth is measured against."""
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    @classmethod
    def create(cls, path: Path, meta: LogMeta) -> PartitionLog:
        """A new, empty file (replacing any file at `path`)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, MAGIC + _framed(meta.encode()))
        return cls(path, meta, path.stat().st_size, path.stat().st_size)

    @classmethod
    def open(cls, path: Path, contents: Contents) -> PartitionLog:
        """Continue a file `read_log` read, cutting off a torn tail first."""
        if contents.valid_bytes < contents.file_bytes:
            os.truncate(path, contents.valid_bytes)
        return cls(path, contents.meta, contents.valid_bytes, contents.valid_bytes)

    def append(self, entries: Iterable[tuple[str, bytes | None]], position: Position) -> None:
        """Add `entries`, reflecting the changelog up to `position`, in one write."""
        self._write(encode_frame(entries, position))

    def _write(self, frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            view = view[os.write(self._fd, view) :]
        self.size += len(frame)

    def wants_compaction(self, slack_bytes: int) -> bool:
        """Grown past 1.5 times its size after the last compaction (plus `slack_bytes`)."""
        return self.size > 1.5 * self.snapshot_bytes + slack_bytes

    def close(self) -> None:
        """Close the file (it stays on disk)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def wipe(self) -> None:
        """Close and delete the file."""
        self.close()
        self.path.unlink(missing_ok=True)

    # -- compaction ---------------------------------------------------------------
    # Three steps, so that the slow middle one can run in a thread while frames
    # keep being appended: note where the file ends now, write a snapshot of the
    # file up to there beside it, then move what was appended meanwhile over and
    # rename the new file into place.

    def compaction_point(self) -> int:
        """Where a snapshot taken now ends (step 1, on the writer's thread)."""
        return self.size

    def write_snapshot(self, upto: int) -> Path:
        """Write the file's contents up to byte `upto` as one snapshot (step 2, any thread)."""
        contents = read_log(self.path, upto)
        temporary = self.path.with_suffix(".compacting")
        frame = (
            encode_frame(contents.entries.items(), contents.position, snapshot=True)
            if contents.position is not None
            else b""
        )
        _write_durably(temporary, MAGIC + _framed(self.meta.encode()) + frame)
        return temporary

    def finish_compaction(self, temporary: Path, upto: int) -> None:
        """Append what came after `upto` to the snapshot and put it in place (step 3)."""
        with self.path.open("rb") as handle:
            handle.seek(upto)
            since = handle.read()
        with temporary.open("ab") as handle:
            handle.write(since)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)
        _sync_directory(self.path.parent)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.size = self.snapshot_bytes = self.path.stat().st_size


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(".new")
    _write_durably(temporary, data)
    temporary.replace(path)
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
