"""``python -m rescorer`` is the ``rescorer`` command."""

from __future__ import annotations

import sys

from rescorer.cli import main

sys.exit(main())
