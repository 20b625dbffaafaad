"""The installed distribution's version, recorded in artifacts and worker info.

>>> isinstance(PACKAGE_VERSION, str) and len(PACKAGE_VERSION) > 0
True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    PACKAGE_VERSION: str = version("segment-rescorer")
except PackageNotFoundError:  # running from a source tree that is not installed
    PACKAGE_VERSION = "0.0.0+source"
