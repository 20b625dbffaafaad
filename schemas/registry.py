"""The model registry: versioned artifacts and the active pointer in a directory.

Layout of ``RESCORER_MODEL_DIR``::

    model-v000001.json   one validated SegmentModel per version
    registry.json        {"active": 3, "history": [1, 2, 3]}

Writes are atomic (write, then rename) and serialised by a lock file, so a
worker reading the directory never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from schemas.model import ModelRejected, SegmentModel, load_segment_model

_FILE = re.compile(r"^model-v(\d{6,})\.json$")


class RegistryError(ValueError):
    """A registry operation that cannot be done (unknown version, nothing to roll back)."""


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    Path(tmp).replace(path)


class ModelRegistry:
    """Versioned models in one directory."""

    def __init__(self, root: Path, verify_keys: Sequence[bytes] = ()) -> None:
        self.root = root
        self.verify_keys = verify_keys
        """When given, `load` accepts only artifacts signed by one of them."""

    def path(self, version: int) -> Path:
        """Where version `version` lives."""
        return self.root / f"model-v{version:06d}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def versions(self) -> list[int]:
        """Stored versions, ascending."""
        if not self.root.is_dir():
            return []
        found = (_FILE.match(p.name) for p in self.root.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def next_version(self) -> int:
        """The version a newly trained model gets (monotonic)."""
        return max(self.versions(), default=0) + 1

    def load(self, version: int) -> SegmentModel:
        """A stored model, validated; `RegistryError` if missing or invalid."""
        path = self.path(version)
        try:
            return load_segment_model(path.read_bytes(), self.verify_keys)
        except FileNotFoundError as exc:
            raise RegistryError(f"no model version {version} in {self.root}") from exc
        except ModelRejected as exc:
            raise RegistryError(f"{path}: {exc}") from exc

    def _state(self) -> dict[str, object]:
        try:
            state: dict[str, object] = json.loads((self.root / "registry.json").read_text())
        except (OSError, ValueError):
            return {"active": None, "history": []}
        return state

    def active_version(self) -> int | None:
        """The promoted version, if any."""
        active = self._state().get("active")
        return int(active) if isinstance(active, int) else None

    def active(self) -> SegmentModel | None:
        """The promoted model, if any."""
        version = self.active_version()
        return self.load(version) if version is not None else None

    def history(self) -> list[int]:
        """Versions in the order they were promoted."""
        history = self._state().get("history")
        return [int(v) for v in history] if isinstance(history, list) else []

    def save(self, model: SegmentModel) -> Path:
        """Store a new version; its number must be new."""
        with self._locked():
            path = self.path(model.version)
            if path.exists():
                raise RegistryError(f"model version {model.version} already exists in {self.root}")
            _atomic_write(path, model.model_dump_json(indent=2) + "\n")
        return path

    def promote(self, version: int) -> None:
        """Make `version` the active model."""
        self.load(version)
        with self._locked():
            history = [*self.history(), version]
            _atomic_write(
                self.root / "registry.json",
                json.dumps({"active": version, "history": history}) + "\n",
            )

    def rollback(self) -> int:
        """Re-activate the previously promoted version; return it."""
        with self._locked():
            history = self.history()
            if len(history) < 2:
                raise RegistryError("nothing to roll back to: fewer than two promotions")
            history.pop()
            version = history[-1]
            _atomic_write(
                self.root / "registry.json",
                json.dumps({"active": version, "history": history}) + "\n",
            )
        return version
