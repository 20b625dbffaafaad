"""Helpers shared by the subcommands: settings, timestamps, progress."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from pydantic import ValidationError

from rescorer.cli import UsageError
from schemas.settings import RescorerSettings


def load_settings() -> RescorerSettings:
    """Settings from the environment; a bad value is a usage error naming the variable."""
    try:
        return RescorerSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise UsageError(f"invalid setting {where}: {first['msg']}") from exc


def parse_timestamp(text: str, flag: str) -> datetime:
    """An ISO-8601 timestamp with a timezone, or a usage error naming the flag."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"{flag} {text!r} is not an ISO-8601 timestamp") from exc
    if value.tzinfo is None:
        raise UsageError(f"{flag} {text!r} needs a timezone, e.g. {text}Z")
    return value


@contextmanager
def progress_reporter(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A status line on a terminal (rich); silent when output is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _message: None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("starting") as status:
        yield lambda message: status.update(message)


def margin_arg(text: str) -> float:
    """argparse type: a hysteresis margin in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a margin in [0, 1)")
    return value


def rate_arg(text: str) -> float:
    """argparse type: a learning rate in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a learning rate in [0, 1]")
    return value
