"""What the worker stores per customer: the streaming state plus the current assignment.

Records travel through a changelog, so they have a compact JSON form. Times
are integer microseconds since the epoch (exact and cheap to parse).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic_core import from_json, to_json

from scoring.customer_state import CustomerState

RECORD_FORMAT = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (moment - _EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    """Inverse of `to_micros` (UTC)."""
    return _EPOCH + timedelta(microseconds=micros)


@dataclass
class CustomerRecord:
    """One customer's state and where it stands.

    ``as_of`` is the event time of the last evaluation; ``vector`` the
    features then, so an unchanged re-evaluation emits nothing.
    """

    state: CustomerState
    partition: int = 0
    segment_id: int | None = None
    model_version: int | None = None
    as_of: datetime | None = None
    vector: tuple[float, int, float] | None = None
    trigger_event_id: str | None = field(default=None, compare=False)

    def dumps(self) -> bytes:
        """The compact JSON form used on the changelog."""
        state = self.state
        body = {
            "f": RECORD_FORMAT,
            "p": self.partition,
            "w": state.window_days,
            "lp": None if state.last_purchase is None else to_micros(state.last_purchase),
            "d": [[day, count, net] for day, (count, net) in state.days.items()],
            "s": list(state.seen.items()),
            "seg": self.segment_id,
            "mv": self.model_version,
            "at": None if self.as_of is None else to_micros(self.as_of),
            "v": None if self.vector is None else list(self.vector),
        }
        return to_json(body)

    @classmethod
    def loads(cls, data: bytes | str) -> CustomerRecord:
        """Parse `dumps` output; `ValueError` for anything else."""
        try:
            body = from_json(data)
            if body.get("f") != RECORD_FORMAT:
                raise ValueError(f"unknown record format {body.get('f')!r}")
            state = CustomerState(
                window_days=int(body["w"]),
                last_purchase=None if body["lp"] is None else from_micros(int(body["lp"])),
                days={int(d): (int(c), int(n)) for d, c, n in body["d"]},
                seen={str(e): int(d) for e, d in body["s"]},
            )
            vector = body["v"]
            return cls(
                state=state,
                partition=int(body["p"]),
                segment_id=body["seg"],
                model_version=body["mv"],
                as_of=None if body["at"] is None else from_micros(int(body["at"])),
                vector=None
                if vector is None
                else (float(vector[0]), int(vector[1]), float(vector[2])),
            )
        except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a customer record: {exc}") from exc
