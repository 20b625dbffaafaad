"""The demo runs end to end with a short configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rescorer.devkafka import ProvidedBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_prints_its_summary(kafka: ProvidedBroker, tmp_path: Path) -> None:
    env = {**os.environ, "RESCORER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rescorer",
            "demo",
            "--customers",
            "300",
            "--duration",
            "300",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "summary" in done.stdout
    assert "model v1: 300 customers" in done.stdout
    assert (tmp_path / "report" / "index.html").is_file()
    assert (tmp_path / "models" / "model-v000001.json").is_file()
