"""How a command fails, and the exit code each kind of failure gets.

A leaf module: commands raise these, `rescorer.cli` maps them to exit codes,
and neither imports the other for it.
"""

from __future__ import annotations

from typing import Final

EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_DENIED: Final = 77
"""Kafka refused the principal an operation (sysexits' EX_NOPERM)."""


class UsageError(Exception):
    """Bad input from the user (a flag, a file, a setting): one line, exit code 2."""


class RuntimeFailure(Exception):
    """The job could not be done with good input (a broker unreachable): one line, exit 1."""
