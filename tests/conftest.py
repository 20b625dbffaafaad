"""Fixtures shared by every tier."""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from rescorer.devkafka import BrokerUnavailable, ProvidedBroker, provide_broker

# A Faust app a test runs as its own process: it reads its settings at import.
collect_ignore = ["support/faust_echo.py"]
CDNOW = Path(__file__).resolve().parent / "data" / "cdnow_sample.csv"


@pytest.fixture(scope="session")
def cdnow_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CDNOW sample converted to CustomerEvent JSON Lines (``rescorer convert-cdnow``)."""
    from rescorer.cli import main

    out = tmp_path_factory.mktemp("cdnow") / "cdnow.jsonl"
    assert main(["convert-cdnow", str(CDNOW), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def kafka() -> Iterator[ProvidedBroker]:
    """One real Apache Kafka broker for the whole session.

    From ``RESCORER_KAFKA_BOOTSTRAP_SERVERS``, else Docker, else Maven jars.
    When none can be had this fails (never skips): the integration tier is
    part of the suite, and under ``CI=true`` a skip would hide a missing broker.
    """
    try:
        with provide_broker() as broker:
            yield broker
    except BrokerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def topic_prefix() -> str:
    """A prefix that keeps each test's topics apart on the shared broker."""
    return f"t{uuid.uuid4().hex[:10]}"


def running_in_ci() -> bool:
    """Whether ``CI=true`` is set."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Under ``CI=true`` a skipped integration test is a failure: CI skips nothing it needs."""
    outcome = yield
    report = outcome.get_result()
    if (
        running_in_ci()
        and report.skipped
        and item.get_closest_marker("integration") is not None
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        report.longrepr = f"integration test skipped under CI=true: {report.longrepr}"


@pytest.fixture(scope="session")
def prometheus_tools() -> dict[str, str]:
    """Paths of ``prometheus`` and ``promtool`` (Debian's prometheus package).

    ``make test`` installs them; without them the test is skipped locally and
    fails under ``CI=true``.
    """
    import shutil

    found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        message = f"{', '.join(missing)} not on PATH (apt-get install prometheus; make test does)"
        if running_in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return {name: str(path) for name, path in found.items()}


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's ``chromium`` (headless) for checking pages as a person sees them.

    ``make test`` installs it; without it the test is skipped locally and fails
    under ``CI=true``.
    """
    import shutil

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium not on PATH (apt-get install chromium; make test does)"
        if running_in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """A local Spark session (PySpark, the ``[spark]`` extra, on the installed Java).

    ``make test`` installs PySpark; without it the test is skipped locally and
    fails under ``CI=true``.
    """
    try:
        from offline.spark_history import session
    except Exception as exc:
        if running_in_ci():
            pytest.fail(f"PySpark unavailable: {exc}", pytrace=False)
        pytest.skip(f"PySpark unavailable: {exc}")
    spark = session("local[2]")
    yield spark
    spark.stop()
