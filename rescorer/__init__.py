"""Command line and developer tooling of segment-rescorer (the composition root)."""

from __future__ import annotations

from schemas.package import PACKAGE_VERSION as __version__

__all__ = ["__version__"]
