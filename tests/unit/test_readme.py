"""The README's console sessions run as shown (the ones that need no broker).

Every ``console`` block is a session: ``$ rescorer ...`` lines are run in
order, in one scratch directory laid out like a checkout beside ``shared``,
and what each prints must match the lines under it (``...`` matches
anything, runs of spaces are one space), as doctest would.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDNOW = ROOT / "tests" / "data" / "cdnow_sample.csv"  # the same file as ../shared/data's
BLOCK = re.compile(r"^```console\n(.*?)^```", re.S | re.M)


def sessions(text: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs of every console block, in order."""
    pairs: list[tuple[str, str]] = []
    for block in BLOCK.findall(text):
        command: str | None = None
        expected: list[str] = []
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("$ "):
                if command is not None:
                    pairs.append((command, "".join(f"{e}\n" for e in expected)))
                command, expected = line[2:], []
            else:
                expected.append(line)
        if command is not None:
            pairs.append((command, "".join(f"{e}\n" for e in expected)))
    return pairs


def test_the_readme_has_sessions_to_run() -> None:
    commands = [command.split()[1] for command, _ in sessions((ROOT / "README.md").read_text())]
    assert {"convert-cdnow", "train", "simulate", "replay", "acl"} <= set(commands)


@pytest.mark.slow
def test_the_readme_console_sessions_print_what_they_show(tmp_path: Path) -> None:
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "cdnow_sample.csv").symlink_to(CDNOW)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESCORER_")}
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for command, expected in sessions((ROOT / "README.md").read_text()):
        argv = shlex.split(command)
        assert argv[0] == "rescorer", f"README session runs something else: {command}"
        done = subprocess.run(
            [sys.executable, "-m", "rescorer", *argv[1:]],
            cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"$ {command}\n{done.stderr}"
        assert checker.check_output(expected, done.stdout, flags), (
            f"$ {command}\nREADME shows:\n{expected}\nit printed:\n{done.stdout}"
        )
