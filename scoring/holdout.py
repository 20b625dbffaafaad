"""Holdout (control) groups: a deterministic, stateless flag per customer.

A customer's position ``u`` in [0, 1) is a keyed hash (BLAKE2b, keyed with the
salt) of its id; it is in the holdout of a segment when ``u`` is below that
segment's share. No state is kept, so the worker, `rescorer replay` and any
other process agree on every flag; the same customer keeps its flag across
segments with the same share, and across models; changing the salt reshuffles
everyone.

>>> policy = HoldoutPolicy(share=0.5, salt="s")
>>> policy.position("c-1") == HoldoutPolicy(share=0.1, salt="s").position("c-1")
True
>>> HoldoutPolicy().is_holdout("c-1", 3)
False
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from schemas.settings import DEFAULT_HOLDOUT_SALT, RescorerSettings

_SCALE: Final = float(2**64)


def check_share(share: float, what: str = "holdout share") -> float:
    """`share` if it is in [0, 1); else `ValueError` naming `what`."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {share}")
    return share


@dataclass(frozen=True)
class HoldoutPolicy:
    """Who is held out: `share` of every segment, or `segment_shares[id]` where given."""

    share: float = 0.0
    salt: str = DEFAULT_HOLDOUT_SALT
    segment_shares: Mapping[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_share(self.share)
        for segment, share in self.segment_shares.items():
            check_share(share, f"share of segment {segment}")

    @property
    def enabled(self) -> bool:
        """Whether anyone can be held out."""
        return self.share > 0.0 or any(v > 0.0 for v in self.segment_shares.values())

    def position(self, customer_id: str) -> float:
        """The customer's place in [0, 1), fixed by the salt."""
        digest = hashlib.blake2b(
            customer_id.encode(), digest_size=8, key=self.salt.encode()[:64]
        ).digest()
        return int.from_bytes(digest, "big") / _SCALE

    def share_of(self, segment_id: int) -> float:
        """The holdout share of a segment."""
        return self.segment_shares.get(segment_id, self.share)

    @classmethod
    def from_settings(cls, settings: RescorerSettings) -> HoldoutPolicy:
        """The policy the ``RESCORER_HOLDOUT_*`` settings describe."""
        return cls(settings.holdout_share, settings.holdout_salt, settings.holdout_segment_shares)

    def is_holdout(self, customer_id: str, segment_id: int) -> bool:
        """Whether the customer is in the control group of the segment."""
        share = self.share_of(segment_id)
        return share > 0.0 and self.position(customer_id) < share
