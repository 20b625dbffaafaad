"""The dead-letter contract: what could not be processed, and why."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field

from schemas._base import Contract, UtcDatetime

DEAD_LETTER_SCHEMA_VERSION: Final = 1


class DeadLetter(Contract):
    """Value on ``customer-events-dlq``.

    ``payload`` and ``key`` are the bytes exactly as received (base64 in JSON),
    so a fixed consumer can re-drive them.
    """

    schema_version: Literal[1] = DEAD_LETTER_SCHEMA_VERSION
    payload: bytes
    key: bytes | None = None
    error: Annotated[str, Field(min_length=1)]
    error_type: Annotated[str, Field(min_length=1, max_length=64)]
    topic: Annotated[str, Field(min_length=1)]
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]
    received_at: UtcDatetime
