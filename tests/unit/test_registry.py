"""The model registry: versions, promotion, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.registry import ModelRegistry, RegistryError
from tests.support.toy_model import toy_model
from tests.support.training import trained


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


def test_models_list_and_show_flag_transitional_segments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from schemas.model import ValidationMetrics
    from tests.support.cli import run

    model = toy_model()
    flagged = model.model_copy(
        update={
            "validation": ValidationMetrics(unstable_segments=(str(model.segments[1].segment_id),))
        }
    )
    registry = ModelRegistry(tmp_path)
    registry.save(flagged)
    registry.promote(flagged.version)
    name = flagged.segments[1].name
    code, out, _ = run(["models", "list", "--model-dir", str(tmp_path)], capsys)
    assert code == 0 and f"{name}: unstable: consider merging" in out
    code, out, err = run(["models", "show", "--model-dir", str(tmp_path)], capsys)
    assert code == 0 and "unstable: consider merging" in err
    assert json.loads(out)["validation"]["unstable_segments"] == [
        str(flagged.segments[1].segment_id)
    ]
