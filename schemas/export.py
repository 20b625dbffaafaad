"""Export the contracts as JSON Schema files for consumers in other languages.

Run ``python -m schemas.export`` (or ``rescorer schemas export``) after changing
a contract; a test fails while the committed files are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.dead_letter import DeadLetter
from schemas.events import CustomerEvent
from schemas.feedback import SegmentFeedback
from schemas.model import SegmentModel
from schemas.retrain import RetrainRequest
from schemas.segments import RiskBandChange, SegmentAssignment, SegmentChange

CONTRACTS: dict[str, type[BaseModel]] = {
    "customer-event": CustomerEvent,
    "segment-change": SegmentChange,
    "segment-assignment": SegmentAssignment,
    "risk-band-change": RiskBandChange,
    "dead-letter": DeadLetter,
    "segment-model": SegmentModel,
    "retrain-request": RetrainRequest,
    "segment-feedback": SegmentFeedback,
}
JSON_DIR = Path(__file__).parent / "json"


def render(model: type[BaseModel]) -> str:
    """The JSON Schema of a contract, as the exact text written to disk."""
    return json.dumps(model.model_json_schema(mode="validation"), indent=2, sort_keys=True) + "\n"


def export(directory: Path = JSON_DIR) -> list[Path]:
    """Write ``<name>.schema.json`` for every contract; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in CONTRACTS.items():
        path = directory / f"{name}.schema.json"
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path = JSON_DIR) -> list[str]:
    """Names of contracts whose file is missing or differs from the code."""
    out = []
    for name, model in CONTRACTS.items():
        path = directory / f"{name}.schema.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != render(model):
            out.append(name)
    return out


if __name__ == "__main__":
    for written_path in export(Path(sys.argv[1]) if len(sys.argv) > 1 else JSON_DIR):
        print(written_path)
