"""What became of one event in the core: the outcomes the core counts and the metrics show."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """One valid event's fate (``rescorer_events_processed_total{outcome}``)."""

    APPLIED = "applied"
    """Changed the customer's state."""
    DUPLICATE = "duplicate"
    """Its id is in the customer's de-duplication memory: counted once already."""
    TOO_OLD = "too_old"
    """Older than the RFM window: only the last-purchase time can change."""
    SESSION = "session"
    """A session event: no money, no RFM."""
    FUTURE = "future"
    """Later than the partition's clock allows."""
