"""The training report as a person sees it: rendered by a real browser (headless Chromium).

The page counts its own images, broken ones and errors on its root element
(`offline.report._SELF_CHECK`); Chromium loads it, the DOM it ends with is read
back, and a screenshot is kept beside the report.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from rescorer.cli import main

pytestmark = pytest.mark.integration


def _browser(chromium: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--virtual-time-budget=10000", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_the_report_renders_every_image_without_an_error(
    cdnow_events: Path, tmp_path: Path, chromium: str
) -> None:
    report = tmp_path / "report"
    argv = ["train", "--events", str(cdnow_events), "--model-dir", str(tmp_path / "models"),
            "--bootstrap", "5", "--report", str(report)]  # fmt: skip
    assert main(argv) == 0
    page = (report / "index.html").resolve().as_uri()
    dom = _browser(chromium, "--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    root = re.search(r"<html([^>]*)>", dom.stdout)
    assert root is not None, dom.stdout[:500]
    found = dict(re.findall(r'data-(\w+)="(\d+)"', root.group(1)))
    assert found.get("images") == "6", found  # five of the segments, one of the traits
    assert found.get("broken") == "0", found
    assert "errors" not in found, found
    assert "What will customers do?" in dom.stdout
    shot = report / "screenshot.png"
    taken = _browser(chromium, "--window-size=1200,6000", f"--screenshot={shot}", page)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # a page of tables and charts, not a blank one
