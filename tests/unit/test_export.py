"""The exported JSON Schema files must match the code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.export import CONTRACTS, JSON_DIR, export, stale


def test_committed_json_schemas_are_up_to_date() -> None:
    assert stale() == [], "run 'rescorer schemas export' and commit schemas/json"


def test_every_contract_has_a_schema_version(tmp_path: Path) -> None:
    for path in export(tmp_path):
        schema = json.loads(path.read_text())
        assert "schema_version" in schema["properties"], path.name


def test_staleness_is_detected(tmp_path: Path) -> None:
    export(tmp_path)
    first = next(iter(CONTRACTS))
    target = tmp_path / f"{first}.schema.json"
    target.write_text(target.read_text().replace('"title"', '"tittle"', 1))
    assert stale(tmp_path) == [first]


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_schema_file_exists(name: str) -> None:
    assert (JSON_DIR / f"{name}.schema.json").is_file()
