"""Collection settings for the docstring examples of the packages (``--doctest-modules``).

The Spark engine's module needs PySpark (the ``[spark]`` extra); without it the
module is not collected, so ``pip install -e '.[dev]'`` and a plain ``pytest``
still run everything else. The Spark tests themselves say why they skip, and
fail under ``CI=true`` (``tests/conftest.py``: ``spark_session``).
"""

from __future__ import annotations

import importlib.util

collect_ignore = [] if importlib.util.find_spec("pyspark") else ["offline/spark_history.py"]
