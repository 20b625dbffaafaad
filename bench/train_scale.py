"""Benchmark: `rescorer train` end to end against a plain notebook baseline.

For each size, a synthetic log (~20 events per customer) is written to Parquet
on disk first (files of 500,000 customers, so logs larger than memory can be
made), then timed in the same run:

- ours: ``rescorer train --events DIR`` as a subprocess (read, validate, split
  by customer, per-customer table, k selection, bootstrap, holdout, predictive
  validity, algorithm comparison, artifact), the default polars engine;
- spark: the same with ``--engine spark`` (local mode), up to ``--spark-max``;
- baseline: what a notebook does: pandas groupby RFM, log1p + StandardScaler,
  scikit-learn KMeans for every k in the same range on all customers, silhouette
  on the same sample size, nothing else; up to ``--baseline-max`` (pandas holds
  every event in memory: 10M customers would need ~29 GiB).

Wall time of each child process; peak RSS is the larger of ``os.wait4``'s and
the peak summed RSS of the child's process tree sampled every 0.1 s (Spark's
JVM is a grandchild). The log is generated in a child process too, so that no
child inherits a large parent's peak.
Usage: ``python bench/train_scale.py [--sizes 100000 1000000] [--customers N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BASELINE = r"""
import sys
import numpy as np, pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
df = pd.read_parquet(sys.argv[1])
T = df["occurred_at"].max()
df = df[df["type"] != "session"]
start = (T.normalize() - pd.Timedelta(days=364))
win = df[df["occurred_at"] >= start]
last = df[df["type"] == "purchase"].groupby("customer_id")["occurred_at"].max()
freq = win[win["type"] == "purchase"].groupby("customer_id").size()
signed = np.where(win["type"] == "refund", -win["amount"], win["amount"])
mon = pd.Series(signed, index=win.index).groupby(win["customer_id"]).sum()
rfm = pd.DataFrame({"recency": (T - last).dt.total_seconds() / 86400})
rfm["frequency"] = freq.reindex(rfm.index).fillna(0)
rfm["monetary"] = mon.reindex(rfm.index).fillna(0).clip(lower=0)
X = StandardScaler().fit_transform(np.column_stack([
    rfm["recency"], np.log1p(rfm["frequency"]), np.log1p(rfm["monetary"])]))
best = None
for k in range(3, 8):
    labels = KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(X)
    s = silhouette_score(X, labels, sample_size=min(len(X), 8000), random_state=0)
    best = max(best or (s, k), (s, k))
print("baseline k", best[1], "silhouette", round(best[0], 3))
"""


GENERATE = r"""
import sys
from pathlib import Path
from offline.synthetic import write_synthetic_parquet
print(write_synthetic_parquet(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
"""


def _tree_rss_mb(root: int) -> float:
    """Summed resident memory of `root` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 2**20


def timed(argv: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, output) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], _tree_rss_mb(child.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv[:3]} failed:\n{output}")
    return seconds, max(usage.ru_maxrss / 1024, peak[0]), output


def _summary(output: str) -> str:
    return next((ln for ln in output.splitlines() if ln.startswith("silhouette")), "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--customers", type=int, help="one size only (e.g. 10000000)")
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    parser.add_argument("--baseline-max", type=int, default=1_000_000)
    parser.add_argument("--spark-max", type=int, default=1_000_000)
    parser.add_argument("--work-dir", help="where the logs are written (default: a temp dir)")
    args = parser.parse_args()

    rescorer = str(Path(sys.executable).with_name("rescorer"))
    sizes = [args.customers] if args.customers else args.sizes
    last = ""
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        for size in sizes:
            folder = Path(tmp) / f"events_{size}"
            # In a child: a forked child inherits the parent's peak RSS in ru_maxrss, so
            # the generator's memory must never be this process's.
            gen_s, _, gen_out = timed([sys.executable, "-c", GENERATE, str(folder), str(size),
                                       str(args.events_per_customer)])  # fmt: skip
            n_events = int(gen_out.split()[-1])
            print(f"customers={size:>9} events={n_events:>10}  generated in {gen_s:.0f}s",
                  flush=True)  # fmt: skip
            train = [rescorer, "train", "--events", str(folder), "--work-dir", tmp]
            ours_s, ours_mb, out = timed([*train, "--model-dir", str(Path(tmp) / f"m{size}")])
            print(f"    ours (polars): {ours_s:7.1f}s {ours_mb:7.0f} MiB   {_summary(out)}",
                  flush=True)  # fmt: skip
            if size <= args.spark_max:
                spark_s, spark_mb, spark_out = timed(
                    [*train, "--engine", "spark", "--model-dir", str(Path(tmp) / f"s{size}")]
                )
                print(f"    ours (spark, local[*]): {spark_s:7.1f}s {spark_mb:7.0f} MiB   "
                      f"{_summary(spark_out)}", flush=True)  # fmt: skip
            baseline = "none"
            if size <= args.baseline_max:
                base_s, base_mb, base_out = timed([sys.executable, "-c", BASELINE, str(folder)])
                baseline = f"{base_s:.1f}"
                print(f"    baseline: {base_s:7.1f}s {base_mb:7.0f} MiB   {base_out.strip()}   "
                      f"ours/baseline time {ours_s / base_s:.2f}", flush=True)  # fmt: skip
            else:
                print(f"    baseline: skipped above --baseline-max {args.baseline_max}")
            last = (
                f"RESULT customers={size} seconds={ours_s:.1f} peak_rss_mb={ours_mb:.0f} "
                f"baseline_seconds={baseline}"
            )
    print(last)


if __name__ == "__main__":
    main()
