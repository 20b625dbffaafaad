"""The simulator: deterministic, seasonal, shifts on schedule, malformed events are rejected."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from offline.simulator import event_bodies
from offline.synthetic import MALFORMED_KINDS, BehaviourShift, malformed, synthetic_events
from schemas import CustomerEvent
from streams.decoding import Rejected, decode_event
from tests.support.cli import run

END = datetime(2025, 1, 1, tzinfo=UTC)


def monthly_purchases(events: pl.DataFrame, truth: pl.DataFrame, persona: str) -> list[int]:
    joined = events.join(truth, on="customer_id").filter(
        (pl.col("type") == "purchase") & (pl.col("persona") == persona)
    )
    by_month = joined.group_by(pl.col("occurred_at").dt.month().alias("m")).len().sort("m")
    return by_month["len"].to_list()


def test_same_seed_same_log_and_defaults_unchanged_by_the_new_options() -> None:
    a, ta = synthetic_events(300, end=END, days=365, seed=5)
    b, tb = synthetic_events(300, end=END, days=365, seed=5, seasonality=0.0, shift=None)
    assert a.equals(b) and ta.equals(tb)
    c, _ = synthetic_events(300, end=END, days=365, seed=5, seasonality=0.5)
    d, _ = synthetic_events(300, end=END, days=365, seed=5, seasonality=0.5)
    assert c.equals(d) and not c.equals(a)


def test_a_shift_cuts_the_personas_purchases_from_its_date() -> None:
    shift = BehaviourShift("high_value_loyal", 0.2, datetime(2024, 7, 1, tzinfo=UTC))
    base, truth = synthetic_events(3000, end=END, days=365, seed=2)
    shifted, _ = synthetic_events(3000, end=END, days=365, seed=2, shift=shift)
    before, after = (
        monthly_purchases(base, truth, "high_value_loyal"),
        monthly_purchases(shifted, truth, "high_value_loyal"),
    )
    assert after[:6] == before[:6]  # untouched before July
    assert sum(after[6:]) < 0.35 * sum(before[6:])  # about a fifth after (first purchases stay)
    others_before = monthly_purchases(base, truth, "regular")
    assert monthly_purchases(shifted, truth, "regular") == others_before


def test_seasonality_peaks_in_december() -> None:
    events, truth = synthetic_events(4000, end=END, days=730, seed=3, seasonality=0.8)
    months = (
        events.filter(pl.col("type") == "purchase")
        .group_by(pl.col("occurred_at").dt.month().alias("m"))
        .len()
        .sort("m")["len"]
        .to_list()
    )
    assert months[11] > months[5]  # December beats June despite the same customers
    assert truth.height == 4000


def test_event_bodies_are_valid_contract_events() -> None:
    events, _ = synthetic_events(50, end=END, days=90, seed=1)
    for body in event_bodies(events):
        CustomerEvent.model_validate(body)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_every_malformed_kind_is_rejected_by_the_worker_edge(kind: str) -> None:
    body = next(event_bodies(synthetic_events(5, end=END, days=30, seed=1)[0]))
    key, value = malformed(body, kind)
    assert isinstance(decode_event(key, value), Rejected)


def test_simulate_writes_history_and_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, truth = tmp_path / "h.parquet", tmp_path / "t.csv"
    code, text, err = run(
        ["simulate", "--customers", "200", "--out", str(out), "--truth", str(truth),
         "--shift", "churning:0.5@-30"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    history = pl.read_parquet(out)
    assert history["occurred_at"].max() <= END
    assert pl.read_csv(truth).height == 200
    assert "history:" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "nothing to do"),
        (["--out", "x.txt"], "use a .parquet or .jsonl"),
        (["--out", "x.jsonl", "--shift", "nobody:0.5@3"], "unknown persona"),
        (["--out", "x.jsonl", "--shift", "regular"], "expected PERSONA:FACTOR@DAYS"),
        (["--out", "x.jsonl", "--shift", "regular:2@3"], "factor must be in [0, 1]"),
        (["--out", "x.jsonl", "--malformed-rate", "3"], "3 is not a share in [0, 1]"),
        (["--out", "x.jsonl", "--end", "2024-01-01"], "--end"),
    ],
)
def test_bad_flags_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["simulate", "--customers", "10", *argv], capsys)
    assert code == 2
    assert message in err
