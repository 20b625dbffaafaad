"""Fault injection: crash, redelivery, broker restart, kills mid-write against a real broker.

Each scenario runs the worker through a fault and compares the final
``customer-segments`` with `rescorer replay`'s core over the same events
(`tests/support/exactness.py`). The last line is

    RESULT events=<n> faults=<k> lost=<x> double_counted=<y> mismatched=<z>

where lost, double_counted and mismatched must all be 0 (exit code 1 if not).
It needs Java 17 and Maven (a local broker it can stop and restart).

    python -m bench.fault_injection [--customers 5000] [--days 200]   # from the checkout
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rescorer.devkafka.local import LocalKafka
from tests.support.exactness import (
    Tally,
    broker_restart,
    crash,
    kills_while_writing,
    new_stack,
    redelivery,
    workload,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=200)
    args = parser.parse_args()
    started = time.monotonic()
    work = workload(args.customers, args.days)
    took = time.monotonic() - started
    print(
        f"workload: {len(work.bodies)} events for {args.customers} customers, "
        f"{len(work.expected)} customers in the replay ({took:.0f}s)"
    )
    total = Tally()
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        root = Path(tmp)
        broker = LocalKafka(root / "broker")
        broker.start()
        try:

            def restart() -> None:
                broker.stop(keep_data=True)
                time.sleep(5)
                broker.start()

            scenarios = {
                "crash (SIGKILL mid-stream, restart)": lambda d: crash(
                    new_stack(broker.bootstrap_servers, d), work
                ),
                "redelivery (every event twice)": lambda d: redelivery(
                    new_stack(broker.bootstrap_servers, d), work
                ),
                "broker restart mid-stream": lambda d: broker_restart(
                    new_stack(broker.bootstrap_servers, d), work, restart
                ),
                "20 kills while writing the store, one data dir": lambda d: kills_while_writing(
                    new_stack(broker.bootstrap_servers, d), work, kills=20
                )[0],
            }
            for n, (name, run) in enumerate(scenarios.items()):
                began = time.monotonic()
                workdir = root / f"scenario-{n}"
                workdir.mkdir()
                tally = run(workdir)
                total.add(tally)
                print(f"{name}: {tally.result_line()[7:]} ({time.monotonic() - began:.0f}s)")
                for example in tally.examples:
                    print(f"  {example}")
        finally:
            broker.stop()
    print(total.result_line())
    return 0 if total.exact else 1


if __name__ == "__main__":
    sys.exit(main())
