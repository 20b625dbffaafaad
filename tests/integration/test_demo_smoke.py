"""The demo runs end to end with a short configuration and leaves nothing behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rescorer.devkafka import ProvidedBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def workers_running() -> int:
    found = subprocess.run(
        ["pgrep", "-f", "rescorer worker"], capture_output=True, text=True, check=False
    )
    return len(found.stdout.split())


def test_demo_streams_live_traffic_and_prints_its_summary(
    kafka: ProvidedBroker, tmp_path: Path
) -> None:
    before = workers_running()
    env = {**os.environ, "RESCORER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    done = subprocess.run(
        [sys.executable, "-m", "rescorer", "demo", "--customers", "300", "--duration", "90",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r"metrics at http://127\.0\.0\.1:\d+/metrics", done.stdout)
    assert "] clock " in done.stdout  # plain progress lines without a terminal
    summary = done.stdout.split("\nsummary\n", 1)[1]
    sent = re.search(
        r"(\d+) history \+ (\d+) live \((\d+) malformed, (\d+) dead-lettered\)", summary
    )
    assert sent is not None, summary
    history, live, bad, dead = map(int, sent.groups())
    assert history > 0 and live > 0
    assert bad == dead  # every malformed event reached the dead-letter topic
    changes = re.search(r"segment changes: (\d+) \((.*)\)", summary)
    assert changes is not None and int(changes.group(1)) > 0
    assert "event" in changes.group(2)
    assert "model versions: v1" in summary
    assert "retrain requests: " in summary and "distance-drift detections: " in summary
    assert "ARI" in summary
    assert (tmp_path / "report" / "index.html").is_file()
    assert workers_running() == before
