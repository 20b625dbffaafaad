"""Errors of the offline trainer (a leaf module)."""

from __future__ import annotations


class InputError(ValueError):
    """Unusable input (a file, a topic, its events): reported as one line, exit code 2."""


class KafkaUnavailable(RuntimeError):
    """Kafka could not be reached: not the user's input, a failure of the run (exit 1)."""
