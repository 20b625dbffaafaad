"""What the worker stores per customer: the streaming state plus the current assignment.

Records travel through a changelog, so they have a compact form: a fixed
binary head with where the customer stands (segment, model, evaluation time,
features, risk band, probability alive and repeat purchase days then; `HEAD`),
which a restore reads for a whole partition at once (`scoring.standings`),
followed by the streaming state as JSON. Times are integer microseconds since
the epoch (exact and cheap to parse). Records of the earlier formats (2: a
head without the traits; 1: all JSON, ``{"f":1,...}``) are still read.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import from_json, to_json

from scoring.customer_state import CustomerState
from scoring.rfm import day_number

RECORD_FORMAT = 3
HEAD = struct.Struct("<Biiqdidbfi")
"""Format byte, segment id, model version, as-of micros, recency, frequency, monetary,
risk band code, p_alive, repeat purchase days; ``-1`` (NaN for the floats) where there is none."""
HEAD_V2 = struct.Struct("<Biiqdid")
"""Format 2's head: the same without the three trait fields."""
BANDS = ("low", "medium", "high")
"""Risk bands by their code in the head (`schemas.segments.RiskBand` values, in
`scoring.traits.BAND_ORDER`)."""
BAND_CODES = {band: code for code, band in enumerate(BANDS)}
"""Each band's code (`BANDS` inverted)."""
_NONE = -1
HISTORY_LIMIT = 10
"""Segment changes a record keeps (the newest): about 20 bytes each in the changelog."""
_REASONS = {"event": "e", "recency": "r", "model_update": "m"}
_REASON_OF = {code: reason for reason, code in _REASONS.items()}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def epoch_micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (moment - _EPOCH) // _MICRO


def from_epoch_micros(micros: int) -> datetime:
    """Inverse of `epoch_micros` (UTC)."""
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Move:
    """One segment change as the record remembers it (see `HISTORY_LIMIT`)."""

    as_of: int
    """Event time of the change, whole seconds since the epoch."""
    previous_segment_id: int | None
    segment_id: int
    reason: str
    model_version: int

    def encode(self, current_version: int | None) -> str:
        """``seconds(hex),previous,segment,reason code[,model version]``; the version is
        left out when it is the record's current one (most moves)."""
        previous = "" if self.previous_segment_id is None else str(self.previous_segment_id)
        text = f"{self.as_of:x},{previous},{self.segment_id},{_REASONS[self.reason]}"
        return text if self.model_version == current_version else f"{text},{self.model_version}"

    @classmethod
    def decode(cls, text: str, current_version: int | None) -> Move:
        """Inverse of `encode`."""
        at, previous, segment, reason, *version = text.split(",")
        mv = int(version[0]) if version else current_version
        if mv is None:
            raise ValueError(f"history entry {text!r} has no model version")
        return cls(int(at, 16), int(previous) if previous else None, int(segment),
                   _REASON_OF[reason], mv)  # fmt: skip


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
    history: list[Move] = field(default_factory=list)
    """The latest segment changes, oldest first, at most `HISTORY_LIMIT`."""
    band: str | None = None
    """Churn-risk band at the last evaluation (None: the model had no traits)."""
    p_alive: float | None = None
    """Probability alive then (kept to 32-bit precision)."""
    repeat_days: int | None = None
    """Repeat purchase days then (what the calibration of expected purchases counts from)."""

    def remember(self, move: Move) -> None:
        """Add a change to the bounded history."""
        self.history.append(move)
        del self.history[:-HISTORY_LIMIT]

    def dumps(self) -> bytes:
        """The compact form used on the changelog (`HEAD`, then JSON)."""
        state = self.state
        body: dict[str, object] = {
            "p": self.partition,
            "w": state.window_days,
            "lp": None if state.last_purchase is None else epoch_micros(state.last_purchase),
            "d": [[day, count, net] for day, (count, net) in state.days.items()],
            "s": list(state.seen.items()),
        }
        if state.first_purchase_day is not None:
            body["l"] = [state.first_purchase_day, state.retired_days, state.retired_micros]
        if state.refunds:
            body["r"] = list(state.refunds.items())
        if self.history:  # absent for records written before it existed, and when empty
            body["h"] = ";".join(move.encode(self.model_version) for move in self.history)
        recency, frequency, monetary = self.vector or (math.nan, 0, math.nan)
        head = HEAD.pack(
            RECORD_FORMAT,
            _NONE if self.segment_id is None else self.segment_id,
            _NONE if self.model_version is None else self.model_version,
            _NONE if self.as_of is None else epoch_micros(self.as_of),
            recency,
            frequency,
            monetary,
            _NONE if self.band is None else BAND_CODES[self.band],
            math.nan if self.p_alive is None else self.p_alive,
            _NONE if self.repeat_days is None else self.repeat_days,
        )
        return head + to_json(body)

    @classmethod
    def loads(cls, data: bytes | str) -> CustomerRecord:
        """Parse `dumps` output (or the first, all-JSON format); `ValueError` for anything else."""
        try:
            raw = data.encode() if isinstance(data, str) else data
            if raw[:1] == b"{":
                body = from_json(raw)
                if body.get("f") != 1:
                    raise ValueError(f"unknown record format {body.get('f')!r}")
                at, vector = body["at"], body["v"]
                seg, mv = body["seg"], body["mv"]
                band, alive, repeat = _NONE, math.nan, _NONE
            elif raw[:1] == bytes([RECORD_FORMAT]):
                _, seg, mv, at, recency, frequency, monetary, band, alive, repeat = (
                    HEAD.unpack_from(raw)
                )
                body = from_json(raw[HEAD.size :])
            elif raw[:1] == bytes([2]):
                _, seg, mv, at, recency, frequency, monetary = HEAD_V2.unpack_from(raw)
                band, alive, repeat = _NONE, math.nan, _NONE
                body = from_json(raw[HEAD_V2.size :])
            else:
                raise ValueError(f"unknown record format {raw[:1]!r}")
            if raw[:1] != b"{":
                seg, mv, at = (None if v == _NONE else v for v in (seg, mv, at))
                vector = None if math.isnan(recency) else (recency, frequency, monetary)
            state = _state(body, legacy=raw[:1] != bytes([RECORD_FORMAT]))
            return cls(
                state=state,
                partition=int(body["p"]),
                segment_id=seg,
                model_version=mv,
                as_of=None if at is None else from_epoch_micros(int(at)),
                vector=None
                if vector is None
                else (float(vector[0]), int(vector[1]), float(vector[2])),
                history=[
                    Move.decode(entry, mv)
                    for entry in (body["h"].split(";") if body.get("h") else ())
                ],
                band=None if band == _NONE else BANDS[band],
                p_alive=None if math.isnan(alive) else alive,
                repeat_days=None if repeat == _NONE else repeat,
            )
        except (KeyError, TypeError, IndexError, AttributeError, ValueError, struct.error) as exc:
            raise ValueError(f"not a customer record: {exc}") from exc


def _state(body: dict[str, Any], *, legacy: bool) -> CustomerState:
    """The streaming state of a record's JSON body.

    Records of the formats before the lifetime summary existed (`legacy`)
    start it from what they still hold: the first purchase day is the earliest
    in the window (or the last purchase's), no repeat day has retired.
    """
    last = None if body["lp"] is None else from_epoch_micros(int(body["lp"]))
    days = {int(d): (int(c), int(n)) for d, c, n in body["d"]}
    lifetime = body.get("l")
    first: int | None
    if lifetime is not None:
        first, retired, micros = (int(v) for v in lifetime)
    elif not legacy:
        first, retired, micros = None, 0, 0
    else:
        bought = [d for d, (c, _) in days.items() if c]
        first = min(bought) if bought else (None if last is None else day_number(last))
        retired = micros = 0
    return CustomerState(
        window_days=int(body["w"]),
        last_purchase=last,
        days=days,
        seen={str(e): int(d) for e, d in body["s"]},
        first_purchase_day=first,
        retired_days=retired,
        retired_micros=micros,
        refunds={int(d): int(v) for d, v in body.get("r", ())},
    )
