"""Helpers shared by the subcommands: settings, timestamps, progress."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from pydantic import ValidationError

from rescorer.errors import RuntimeFailure, UsageError
from schemas.settings import RescorerSettings


def load_settings() -> RescorerSettings:
    """Settings from the environment; a bad value is a usage error naming the variable."""
    try:
        return RescorerSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise UsageError(f"invalid setting {where}: {first['msg']}") from exc


def kafka_failure(settings: RescorerSettings, exc: Exception) -> UsageError | RuntimeFailure:
    """The error a command raises when Kafka refused it: bad credentials are the
    user's input (exit 2); an unreachable broker is a failed run (exit 1)."""
    from streams.kafka_clients import explain_kafka_error

    refusal = explain_kafka_error(settings, exc)
    return (
        UsageError(refusal.message) if refusal.bad_credentials else RuntimeFailure(refusal.message)
    )


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


def float_in(
    low: float, high: float, what: str, *, high_open: bool = False
) -> Callable[[str], float]:
    """An argparse type accepting a float in [low, high] (or [low, high) when `high_open`)."""
    bracket = ")" if high_open else "]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        above = value >= high if high_open else value > high
        if not low <= value or above:
            raise argparse.ArgumentTypeError(f"{text} is not {what} in [{low:g}, {high:g}{bracket}")
        return value

    return parse


def margin_arg(text: str) -> float:
    """argparse type: a hysteresis margin in [0, 1) (`scoring.hysteresis.check_margin`)."""
    from scoring.hysteresis import check_margin

    try:
        return check_margin(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a margin in [0, 1)") from None


rate_arg = float_in(0.0, 1.0, "a learning rate")
"""argparse type: a learning rate in [0, 1]."""
share_arg = float_in(0.0, 1.0, "a share", high_open=True)
"""argparse type: a share in [0, 1)."""


def stop_process(child: subprocess.Popen[bytes], grace: float = 30.0) -> int:
    """SIGTERM a child, SIGKILL it if it is still there after `grace` seconds; its exit code."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
    return child.returncode


def scrape_metrics(url: str, timeout: float = 2.0) -> dict[str, float]:
    """A Prometheus text exposition as {series with labels: value}."""
    from urllib.request import urlopen

    with urlopen(url, timeout=timeout) as response:  # noqa: S310 - a URL we built
        text = response.read().decode()
    series: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            series[name] = float(value)
    return series
