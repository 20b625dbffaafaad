"""Fixtures of the unit tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from rescorer.cli import main


@pytest.fixture(scope="session")
def trained_cdnow(cdnow_events: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The artifact `rescorer train` writes for the CDNOW sample (few resamples)."""
    models = tmp_path_factory.mktemp("trained") / "models"
    argv = ["train", "--events", str(cdnow_events), "--model-dir", str(models),
            "--bootstrap", "5"]  # fmt: skip
    assert main(argv) == 0
    return (models / "model-v000001.json").read_bytes()
