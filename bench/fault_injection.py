"""Fault injection: crash, redelivery, broker restart, kills mid-write against a real broker.

Each scenario runs the worker through a fault and compares the final
``customer-segments`` with `rescorer replay`'s core over the same events
(`tests/support/exactness.py`), and counts the changes a read_committed
consumer of ``segment-changes`` sees more than once. Every scenario runs in
each processing mode asked for (``RESCORER_PROCESSING_GUARANTEE``), at least
once first; one line per mode, the last one

    RESULT guarantee=<mode> events=<n> faults=<k> lost=<x> double_counted=<y>
           mismatched=<z> duplicated_changes=<d>

where lost, double_counted and mismatched must all be 0, and in exactly-once
mode duplicated_changes too (exit code 1 if not); at least once, the
duplicated changes are what exactly once removes. It needs Java 17 and Maven
(a local broker it can stop and restart).

    python -m bench.fault_injection [--customers 5000] [--days 200]
                                    [--guarantee at_least_once|exactly_once|both]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rescorer.devkafka.local import LocalKafka
from tests.support.exactness import (
    GUARANTEES,
    Tally,
    broker_restart,
    crash,
    kills_while_writing,
    new_stack,
    redelivery,
    workload,
)
from tests.support.worker_harness import Stack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument(
        "--guarantee", choices=[*GUARANTEES, "both"], default="both",
        help="processing mode(s) to run every scenario in (default both)",
    )  # fmt: skip
    args = parser.parse_args()
    modes = GUARANTEES if args.guarantee == "both" else (args.guarantee,)
    started = time.monotonic()
    work = workload(args.customers, args.days)
    took = time.monotonic() - started
    print(
        f"workload: {len(work.bodies)} events for {args.customers} customers, "
        f"{len(work.expected)} customers in the replay ({took:.0f}s)"
    )
    totals = {mode: Tally() for mode in modes}
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        root = Path(tmp)
        broker = LocalKafka(root / "broker")
        broker.start()
        try:

            def restart() -> None:
                broker.stop(keep_data=True)
                time.sleep(5)
                broker.start()

            def scenarios(mode: str) -> dict[str, Callable[[Path], Tally]]:
                def stack(d: Path) -> Stack:
                    return new_stack(broker.bootstrap_servers, d, guarantee=mode)

                return {
                    "crash (SIGKILL mid-stream, restart)": lambda d: crash(stack(d), work),
                    "redelivery (every event twice)": lambda d: redelivery(stack(d), work),
                    "broker restart mid-stream": lambda d: broker_restart(stack(d), work, restart),
                    "20 kills while writing the store, one data dir": lambda d: kills_while_writing(
                        stack(d), work, kills=20
                    )[0],
                }

            for mode in modes:
                for n, (name, run) in enumerate(scenarios(mode).items()):
                    began = time.monotonic()
                    workdir = root / f"{mode}-{n}"
                    workdir.mkdir()
                    tally = run(workdir)
                    totals[mode].add(tally)
                    print(
                        f"{mode} {name}: {tally.result_line()[7:]} "
                        f"({time.monotonic() - began:.0f}s)"
                    )
                    for example in tally.examples:
                        print(f"  {example}")
        finally:
            broker.stop()
    good = True
    for mode, total in totals.items():
        print(total.result_line().replace("RESULT ", f"RESULT guarantee={mode} "))
        good &= total.exact and (mode != "exactly_once" or total.duplicated_changes == 0)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
