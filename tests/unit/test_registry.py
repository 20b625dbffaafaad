"""The model registry: versions, promotion, rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.registry import ModelRegistry, RegistryError
from tests.unit.test_trainer import trained


def test_save_promote_rollback(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    assert registry.versions() == []
    assert registry.next_version() == 1
    assert registry.active() is None
    model = trained().model
    registry.save(model)
    registry.save(model.model_copy(update={"version": 2}))
    assert registry.versions() == [1, 2]
    assert registry.next_version() == 3
    with pytest.raises(RegistryError, match="already exists"):
        registry.save(model)
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    registry.promote(1)
    registry.promote(2)
    assert registry.active_version() == 2
    assert registry.rollback() == 1
    assert registry.active_version() == 1
    assert registry.history() == [1]
    with pytest.raises(RegistryError, match="no model version 9"):
        registry.promote(9)


def test_a_corrupt_artifact_is_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.save(trained().model)
    registry.path(1).write_text('{"version": 1}')
    with pytest.raises(RegistryError, match="invalid model artifact"):
        registry.load(1)
