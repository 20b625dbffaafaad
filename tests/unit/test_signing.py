"""Signed model artifacts: what verifies, what is refused and why."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.model import ModelRejected, load_segment_model, sign_model
from schemas.settings import RescorerSettings
from schemas.signing import canonical_bytes, key_id, sign_document, verify_document
from tests.support.toy_model import toy_model

KEY = b"k" * 32
OTHER = b"o" * 32


def signed_bytes(key: bytes = KEY, version: int = 1) -> bytes:
    return sign_model(toy_model(version), key).model_dump_json().encode()


def test_a_signed_artifact_verifies_and_loads() -> None:
    model = load_segment_model(signed_bytes(), [KEY])
    assert model.signature is not None and model.signature.key_id == key_id(KEY)
    assert model.version == 1


def test_verification_checks_the_bytes_received_not_a_reserialisation() -> None:
    document = json.loads(signed_bytes())
    # Whitespace and member order do not matter; the canonical form is what is signed.
    reordered = json.dumps(dict(reversed(list(document.items()))), indent=3).encode()
    assert load_segment_model(reordered, [KEY]).version == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (toy_model().model_dump_json().encode(), "unsigned"),
        (signed_bytes(OTHER), "unknown_key"),
        (b"not json", "invalid"),
    ],
)
def test_refusals_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(ModelRejected) as refused:
        load_segment_model(body, [KEY])
    assert refused.value.reason == reason


def test_any_change_to_a_signed_artifact_breaks_the_signature() -> None:
    document = json.loads(signed_bytes())
    document["segments"][0]["name"] = "Renamed"
    with pytest.raises(ModelRejected) as refused:
        load_segment_model(json.dumps(document), [KEY])
    assert refused.value.reason == "bad_signature"
    assert KEY.decode() not in str(refused.value)


def test_rotation_accepts_any_listed_key_and_resigning_replaces_the_signature() -> None:
    old = signed_bytes(OTHER)
    assert load_segment_model(old, [KEY, OTHER]).version == 1
    resigned = sign_model(load_segment_model(old), KEY)
    assert load_segment_model(resigned.model_dump_json(), [KEY]).signature == resigned.signature


def test_without_keys_nothing_is_checked() -> None:
    assert load_segment_model(toy_model().model_dump_json()).signature is None


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=6))
def test_sign_then_verify_round_trips_any_document(document: dict[str, object]) -> None:
    document.pop("signature", None)
    verify_document({**document, "signature": sign_document(document, KEY)}, [KEY])
    assert b"signature" not in canonical_bytes({**document, "signature": {"x": 1}})


def test_short_keys_are_refused_by_the_signer_and_the_settings() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        sign_document({}, b"short")
    with pytest.raises(ValueError, match="RESCORER_MODEL_VERIFY_KEYS"):
        RescorerSettings(model_verify_keys="a-long-enough-key-here,short")


def test_settings_verify_with_the_signing_key_unless_keys_are_listed() -> None:
    signing = RescorerSettings(model_signing_key=KEY.decode())
    assert signing.signing_key == KEY and signing.verification_keys == [KEY]
    listed = RescorerSettings(
        model_signing_key=KEY.decode(), model_verify_keys=f"{OTHER.decode()}, {KEY.decode()}"
    )
    assert listed.verification_keys == [OTHER, KEY]
    assert KEY.decode() not in repr(listed)
