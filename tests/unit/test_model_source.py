"""Where the worker's model comes from, apart from the topic: the registry directory, and
what happens to each artifact read (valid, unsigned, corrupt, a tombstone). Following the
real models topic is the integration tier's job (test_worker, test_security)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from schemas.model import ModelRejected, sign_model
from schemas.registry import ModelRegistry
from streams.model_source import ModelWatcher, model_from_directory
from streams.settings import WorkerSettings
from tests.support.toy_model import toy_model

KEY = b"k" * 32
OTHER = b"o" * 32


def test_the_directory_gives_its_active_model_and_nothing_when_missing_or_empty(
    tmp_path: Path,
) -> None:
    assert model_from_directory(tmp_path / "absent") is None
    assert model_from_directory(tmp_path) is None  # a directory without a registry
    registry = ModelRegistry(tmp_path)
    registry.save(toy_model(version=1))
    registry.save(toy_model(version=2))
    registry.promote(1)
    found = model_from_directory(tmp_path)
    assert found is not None and found.version == 1


def test_an_unsigned_artifact_in_the_directory_is_refused_when_keys_are_required(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = ModelRegistry(tmp_path)
    registry.save(toy_model(version=1))
    registry.promote(1)
    with caplog.at_level(logging.WARNING, logger="streams.model_source"):
        assert model_from_directory(tmp_path, [KEY]) is None
    assert str(tmp_path) in caplog.text
    signed = ModelRegistry(tmp_path / "signed")
    signed.save(sign_model(toy_model(version=3), KEY))
    signed.promote(3)
    found = model_from_directory(tmp_path / "signed", [OTHER, KEY])
    assert found is not None and found.version == 3


def test_each_artifact_read_is_validated_and_a_bad_one_reported_not_used() -> None:
    rejected: list[ModelRejected] = []

    async def on_model(_model: object) -> None:
        raise AssertionError("the watcher's run loop hands models over, not _validate")

    settings = WorkerSettings(model_verify_keys=KEY.decode())  # type: ignore[arg-type]
    watcher = ModelWatcher(settings, on_model, rejected.append)
    good = sign_model(toy_model(version=4), KEY)
    found = watcher._validate(good.model_dump_json().encode())
    assert found is not None and found.version == 4
    assert watcher._validate(None) is None and not rejected  # a tombstone is no model
    assert watcher._validate(b"\x80\x04pickle") is None
    assert watcher._validate(toy_model(version=5).model_dump_json().encode()) is None
    assert (
        watcher._validate(sign_model(toy_model(version=6), OTHER).model_dump_json().encode())
        is None
    )
    assert len(rejected) == 3 and not watcher.caught_up.is_set()
