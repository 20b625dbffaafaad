"""Command line and developer tooling of segment-rescorer (the composition root)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("segment-rescorer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
