"""Feedback on misclassifications: a person says which segment a customer belongs in."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field

from schemas._base import Contract, Identifier, UtcDatetime
from schemas.segments import SegmentId

FEEDBACK_SCHEMA_VERSION: Final = 1


class SegmentFeedback(Contract):
    """Value on ``segment-feedback`` (key ``customer_id``), and on the compacted
    ``segment-feedback-latest`` (the latest per customer).

    >>> SegmentFeedback.model_validate_json(
    ...     '{"customer_id": "c1", "proposed_segment_id": 2, "given_by": "crm-team",'
    ...     ' "given_at": "2025-02-01T09:00:00Z"}').proposed_segment_id
    2
    """

    schema_version: Literal[1] = FEEDBACK_SCHEMA_VERSION
    customer_id: Identifier
    proposed_segment_id: SegmentId
    """The segment the person believes is right (segment ids are stable across models)."""
    given_by: Identifier
    given_at: UtcDatetime
    note: Annotated[str, Field(max_length=1000)] | None = None
