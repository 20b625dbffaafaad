"""Signed model artifacts: HMAC-SHA256 over the artifact's canonical JSON.

Whoever can write the models topic can re-segment every customer, so a worker
configured with verification keys accepts only artifacts signed with one of
them. The signature covers the canonical form of the artifact as a JSON
document (every member except ``signature``, keys sorted, no whitespace,
ASCII), computed from the bytes received rather than from a re-serialised
model, so a verifier whose schema gained a defaulted field still checks the
same bytes the signer signed.

HMAC, not a public-key scheme: the trainer and the workers are run by the
same team and share a secret manager; the key never leaves it and is never
logged. ``key_id`` (a hash prefix of the key, which reveals nothing usable
about it) tells a verifier holding several keys during a rotation which one
to try.

>>> key = b"0123456789abcdef0123456789abcdef"
>>> document = {"version": 3, "name": "x"}
>>> signature = sign_document(document, key)
>>> verify_document({**document, "signature": signature}, [key])
>>> verify_document({**document, "version": 4, "signature": signature}, [key])  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
schemas.signing.SignatureRejected: model signature does not match its content (key ...)
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

ALGORITHM: Final = "HMAC-SHA256"
MIN_KEY_BYTES: Final = 16
"""Shorter keys are refused: an HMAC key should carry at least 128 bits."""

RejectReason = Literal["unsigned", "unknown_key", "bad_signature"]


class SignatureRejected(ValueError):
    """An artifact whose signature does not check out; `reason` is a metric label."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectReason = reason


def key_id(key: bytes) -> str:
    """A short public name of `key` (16 hex digits of a hash)."""
    return hashlib.sha256(b"segment-rescorer key id\x00" + key).hexdigest()[:16]


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the document without its ``signature``."""
    body = {name: value for name, value in document.items() if name != "signature"}
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def _mac(document: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical_bytes(document), hashlib.sha256).hexdigest()


def sign_document(document: Mapping[str, Any], key: bytes) -> dict[str, str]:
    """The ``signature`` member for `document` under `key`."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a signing key needs at least {MIN_KEY_BYTES} bytes")
    return {"algorithm": ALGORITHM, "key_id": key_id(key), "value": _mac(document, key)}


def verify_document(document: Mapping[str, Any], keys: Sequence[bytes]) -> None:
    """Raise `SignatureRejected` unless `document` is signed by one of `keys`."""
    signature = document.get("signature")
    if not isinstance(signature, Mapping):
        raise SignatureRejected("unsigned", "model artifact is not signed")
    if signature.get("algorithm") != ALGORITHM:
        algorithm = signature.get("algorithm")
        raise SignatureRejected(
            "bad_signature", f"model signature algorithm {algorithm!r} is not {ALGORITHM}"
        )
    by_id = {key_id(key): key for key in keys}
    named = str(signature.get("key_id"))
    key = by_id.get(named)
    if key is None:
        raise SignatureRejected(
            "unknown_key", f"model is signed with key {named}, which is not an accepted key"
        )
    if not hmac.compare_digest(_mac(document, key), str(signature.get("value"))):
        raise SignatureRejected(
            "bad_signature", f"model signature does not match its content (key {named})"
        )
