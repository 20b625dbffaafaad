"""A process leaves with its exit code even when a thread would hold it up."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        """
        import logging, threading, time
        from rescorer.leaving import leave
        logging.basicConfig(level=logging.INFO)
        """
    ) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )


def test_a_thread_that_never_ends_does_not_hold_the_exit() -> None:
    done = run(
        """
        threading.Thread(target=time.sleep, args=(600,), name="consumer-thread").start()
        started = time.monotonic()
        try:
            leave(3, deadline=0.5)
        finally:
            print(f"not reached {time.monotonic() - started}")
        """
    )
    assert done.returncode == 3
    assert "not reached" not in done.stdout  # left at once, no finally, no atexit
    assert "threads consumer-thread still running 0 s after the worker stopped" in done.stderr


def test_threads_that_end_in_time_are_waited_for_and_the_exit_is_ordinary() -> None:
    done = run(
        """
        ended = []
        threading.Thread(target=lambda: (time.sleep(0.3), ended.append(1)), name="late").start()
        try:
            leave(5, deadline=10)
        finally:
            print(f"ended {ended}")
        """
    )
    assert done.returncode == 5
    assert "ended [1]" in done.stdout  # an ordinary SystemExit: finally blocks run
    assert "still running" not in done.stderr
