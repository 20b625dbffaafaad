"""Fixtures of the unit tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from rescorer.cli import main

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow_sample.csv"


@pytest.fixture(scope="session")
def cdnow_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CDNOW sample converted to CustomerEvent JSON Lines (``rescorer convert-cdnow``)."""
    out = tmp_path_factory.mktemp("cdnow") / "cdnow.jsonl"
    assert main(["convert-cdnow", str(CDNOW), "--out", str(out)]) == 0
    return out
