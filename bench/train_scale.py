"""Benchmark: `rescorer train` end to end against a plain notebook baseline.

For each size, a synthetic log (~20 events per customer) is written to Parquet,
then timed in the same run:

- ours: ``rescorer train --events FILE`` as a subprocess (read, validate,
  features, k selection, bootstrap, holdout, artifact);
- baseline: what a notebook does: pandas groupby RFM, log1p + StandardScaler,
  scikit-learn KMeans for every k in the same range on all customers, silhouette
  on the same sample size, nothing else.

Wall time and peak RSS of each child process come from ``os.wait4``.
Usage: ``python bench/train_scale.py [--sizes 100000 1000000]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
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


def timed(argv: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv[:3]} failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    args = parser.parse_args()
    from offline.synthetic import synthetic_events

    rescorer = str(Path(sys.executable).with_name("rescorer"))
    last = ""
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            events, _ = synthetic_events(size, events_per_customer=args.events_per_customer)
            path = Path(tmp) / f"events_{size}.parquet"
            events.write_parquet(path)
            n_events = events.height
            del events
            ours_s, ours_mb, out = timed(
                [
                    rescorer,
                    "train",
                    "--events",
                    str(path),
                    "--model-dir",
                    str(Path(tmp) / f"models_{size}"),
                ]
            )
            base_s, base_mb, base_out = timed([sys.executable, "-c", BASELINE, str(path)])
            summary = next((ln for ln in out.splitlines() if ln.startswith("silhouette")), "")
            print(
                f"customers={size:>9} events={n_events:>10}  "
                f"ours: {ours_s:7.1f}s {ours_mb:7.0f} MiB   "
                f"baseline: {base_s:7.1f}s {base_mb:7.0f} MiB   speed-up x{base_s / ours_s:.2f}"
            )
            print(f"    ours: {summary}")
            print(f"    {base_out.strip()}")
            last = (
                f"RESULT customers={size} seconds={ours_s:.1f} peak_rss_mb={ours_mb:.0f} "
                f"baseline_seconds={base_s:.1f}"
            )
    print(last)


if __name__ == "__main__":
    main()
