"""Holdout groups: deterministic, stateless, the configured share, independent of segment."""

from __future__ import annotations

import pytest

from schemas.settings import RescorerSettings
from scoring.holdout import HoldoutPolicy

IDS = [f"customer-{n}" for n in range(100_000)]


@pytest.mark.parametrize("share", [0.05, 0.1, 0.5])
def test_the_realised_share_is_within_one_point_of_the_setting(share: float) -> None:
    policy = HoldoutPolicy(share=share, salt="test")
    held = sum(policy.is_holdout(c, 0) for c in IDS)
    assert abs(held / len(IDS) - share) <= 0.01


def test_flags_are_independent_of_the_segment_and_stable_across_instances() -> None:
    policy = HoldoutPolicy(share=0.1, salt="test")
    again = HoldoutPolicy(share=0.1, salt="test")
    for customer in IDS[:5000]:
        flags = {policy.is_holdout(customer, segment) for segment in range(6)}
        assert len(flags) == 1
        assert again.is_holdout(customer, 3) in flags


def test_a_new_salt_reshuffles_who_is_held_out() -> None:
    first = {c for c in IDS[:20_000] if HoldoutPolicy(0.1, "one").is_holdout(c, 0)}
    second = {c for c in IDS[:20_000] if HoldoutPolicy(0.1, "two").is_holdout(c, 0)}
    overlap = len(first & second) / len(first)
    assert 0.05 < overlap < 0.15  # about the share: independent draws


def test_segment_overrides_and_the_off_default() -> None:
    policy = HoldoutPolicy(share=0.0, salt="s", segment_shares={2: 0.3})
    assert policy.enabled and not HoldoutPolicy().enabled
    held = [c for c in IDS[:10_000] if policy.is_holdout(c, 2)]
    assert abs(len(held) / 10_000 - 0.3) <= 0.02
    assert not any(policy.is_holdout(c, 1) for c in held)
    # A larger share holds out a superset: customers keep their flag as shares grow.
    wider = HoldoutPolicy(share=0.0, salt="s", segment_shares={2: 0.5})
    assert all(wider.is_holdout(c, 2) for c in held)


def test_bad_shares_are_refused() -> None:
    with pytest.raises(ValueError, match="holdout share"):
        HoldoutPolicy(share=1.0)
    with pytest.raises(ValueError, match="segment 3"):
        HoldoutPolicy(segment_shares={3: -0.1})


def test_settings_make_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESCORER_HOLDOUT_SHARE", "0.2")
    monkeypatch.setenv("RESCORER_HOLDOUT_SEGMENT_SHARES", '{"4": 0.5}')
    monkeypatch.setenv("RESCORER_HOLDOUT_SALT", "pepper")
    settings = RescorerSettings()
    assert HoldoutPolicy.from_settings(settings) == HoldoutPolicy(0.2, "pepper", {4: 0.5})
    assert settings.environment()["RESCORER_HOLDOUT_SEGMENT_SHARES"] == '{"4": 0.5}'
