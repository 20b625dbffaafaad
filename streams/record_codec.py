"""Faust codec for the customer table: `CustomerRecord` <-> its compact JSON."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from scoring.customer_record import CustomerRecord

CODEC_NAME = "customer_record"


class CustomerRecordCodec(codecs.Codec):
    """Serialises table values with `CustomerRecord.dumps` / `loads`."""

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, CustomerRecord):
            raise TypeError(f"expected a CustomerRecord, got {type(obj).__name__}")
        return obj.dumps()

    def _loads(self, s: bytes) -> Any:
        return CustomerRecord.loads(s)


def register() -> None:
    """Make the codec available to Faust under `CODEC_NAME` (idempotent)."""
    codecs.register(CODEC_NAME, CustomerRecordCodec())
