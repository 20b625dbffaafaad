"""``rescorer replay``: the stream core over CDNOW agrees with the offline path."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from offline.events_io import load_events
from offline.features import rfm_features
from rescorer.cli import main
from schemas.registry import ModelRegistry
from scoring.holdout import HoldoutPolicy
from scoring.space import ModelSpace
from tests.support.cli import run


@pytest.fixture(scope="module")
def cdnow(cdnow_events: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    events = cdnow_events
    models = tmp_path_factory.mktemp("replay") / "models"
    assert (
        main(
            [
                "train",
                "--events",
                str(events),
                "--model-dir",
                str(models),
                "--bootstrap",
                "2",
                "--holdout-days",
                "0",
            ]
        )
        == 0
    )
    return events, models


def replay(cdnow: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    """``rescorer replay`` argv over the CDNOW events and model."""
    events, models = cdnow
    return [
        "replay",
        "--events",
        str(events),
        "--model-dir",
        str(models),
        "--out",
        str(out),
        *extra,
    ]


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replay_features_and_segments_equal_the_offline_path_on_cdnow(
    cdnow: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, models = cdnow
    code, out, err = run(replay(cdnow, tmp_path, "--margin", "0", "--learning-rate", "0"), capsys)
    assert code == 0, err
    assert "2349 customers assigned" in out
    model = ModelRegistry(models).active()
    assert model is not None
    offline = rfm_features(load_events([str(events)]).frame, model.as_of, 365)
    assignments = read_jsonl(tmp_path / "assignments.jsonl")
    assert [a["customer_id"] for a in assignments] == offline["customer_id"].to_list()
    streamed = np.array(
        [
            [a["features"][f] for f in ("recency_days", "frequency", "monetary")]  # type: ignore[index]
            for a in assignments
        ]
    )
    batch = offline.select("recency_days", "frequency", "monetary").to_numpy()
    np.testing.assert_array_equal(streamed[:, :2], batch[:, :2])
    np.testing.assert_allclose(streamed[:, 2], batch[:, 2], rtol=0, atol=1e-9)
    assert {a["as_of"] for a in assignments} == {"1998-06-30T12:00:00Z"}
    space = ModelSpace.from_model(model)
    expected = [space.segment_ids[i] for i in space.nearest(batch)]
    assert [a["segment_id"] for a in assignments] == expected


def test_replay_is_deterministic_and_the_change_stream_is_consistent(
    cdnow: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for name in ("a", "b"):
        code, _, err = run(replay(cdnow, tmp_path / name), capsys)
        assert code == 0, err
        outputs.append(
            (
                (tmp_path / name / "changes.jsonl").read_bytes(),
                (tmp_path / name / "assignments.jsonl").read_bytes(),
            )
        )
    assert outputs[0] == outputs[1]
    changes = read_jsonl(tmp_path / "a" / "changes.jsonl")
    reasons = Counter(c["reason"] for c in changes)
    assert set(reasons) == {"event", "recency"}
    # Following each customer's changes from nothing ends in their final segment.
    last: dict[object, object] = {}
    for change in changes:
        assert change["previous_segment_id"] == last.get(change["customer_id"])
        assert change["segment_id"] != change["previous_segment_id"]
        last[change["customer_id"]] = change["segment_id"]
    final = {
        a["customer_id"]: a["segment_id"] for a in read_jsonl(tmp_path / "a" / "assignments.jsonl")
    }
    assert last == final


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--margin", "1.5"], "--margin: 1.5 is not a margin"),
        (["--learning-rate", "-1"], "--learning-rate: -1 is not a learning rate"),
        (["--sweep-period-hours", "0"], "--sweep-period-hours 0 must be positive"),
        (["--batch-size", "0"], "--batch-size 0 must be at least 1"),
        (
            ["--work-dir", "/nonexistent/scratch"],
            "work directory /nonexistent/scratch does not exist",
        ),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    cdnow: tuple[Path, Path], argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    events, models = cdnow
    code, _, err = run(
        ["replay", "--events", str(events), "--model-dir", str(models), *argv], capsys
    )
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) <= 2  # argparse prints usage + one error line


def test_missing_model_dir_and_bad_events_exit_2(
    cdnow: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, models = cdnow
    code, _, err = run(
        ["replay", "--events", str(events), "--model-dir", str(tmp_path / "none")], capsys
    )
    assert code == 2 and "is not a directory" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(["replay", "--events", str(events), "--model-dir", str(empty)], capsys)
    assert code == 2 and "has no active model" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    code, _, err = run(["replay", "--events", str(bad), "--model-dir", str(models)], capsys)
    assert code == 2 and err.count("\n") == 1


def test_replay_writes_membership_confidence_and_holdout(
    cdnow: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("RESCORER_HOLDOUT_SHARE", "0.2")
    monkeypatch.setenv("RESCORER_HOLDOUT_SALT", "replay-test")
    code, _, err = run(replay(cdnow, tmp_path / "out", "--margin", "0"), capsys)
    assert code == 0, err
    assignments = read_jsonl(tmp_path / "out" / "assignments.jsonl")
    policy = HoldoutPolicy(0.2, "replay-test")
    for a in assignments:
        scores = a["membership"]
        assert isinstance(scores, dict) and abs(sum(scores.values()) - 1) < 1e-4
        # With no hysteresis holding anyone, the top score is the assigned segment.
        assert max(scores, key=scores.get) == str(a["segment_id"])
        assert 0 <= a["confidence"] <= 1  # type: ignore[operator]
        assert a["holdout"] == policy.is_holdout(str(a["customer_id"]), int(a["segment_id"]))  # type: ignore[call-overload]
    held = sum(bool(a["holdout"]) for a in assignments) / len(assignments)
    assert 0.15 < held < 0.25
    changes = read_jsonl(tmp_path / "out" / "changes.jsonl")
    exits = [c for c in changes if c["previous_segment_id"] is not None]
    assert exits and all(c["previous_segment_name"] for c in exits)


def test_feature_weights_are_recorded_and_replay_scores_in_the_weighted_space(
    cdnow_events: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    argv = ["train", "--events", str(cdnow_events), "--model-dir", str(models),
            "--bootstrap", "2", "--holdout-days", "0", "--weights", "recency_days=3"]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code == 0, err
    model = ModelRegistry(models).active()
    assert model is not None
    assert model.features.weights == {"recency_days": 3.0, "frequency": 1.0, "monetary": 1.0}
    space = ModelSpace.from_model(model)
    log = load_events([str(cdnow_events)])
    features = rfm_features(log.frame, model.as_of, model.features.window_days)
    raw = features.select("recency_days", "frequency", "monetary").to_numpy().astype(float)
    plain = (np.log1p(raw) - np.asarray(model.scaler.mean)) / np.asarray(model.scaler.scale)
    plain[:, 0] = (raw[:, 0] - model.scaler.mean[0]) / model.scaler.scale[0]
    np.testing.assert_allclose(space.embed(raw), plain * np.asarray([3.0, 1.0, 1.0]))
    code, _, err = run(
        ["replay", "--events", str(cdnow_events), "--model-dir", str(models), "--out",
         str(tmp_path / "out"), "--margin", "0", "--learning-rate", "0"], capsys,
    )  # fmt: skip
    assert code == 0, err
    assigned = {
        a["customer_id"]: a["segment_id"]
        for a in read_jsonl(tmp_path / "out" / "assignments.jsonl")
    }
    ids = np.asarray([s.segment_id for s in model.segments])[space.nearest(raw)]
    expected = dict(zip(features["customer_id"].to_list(), ids.tolist(), strict=True))
    assert assigned == expected
    code, _, err = run(["train", "--events", str(cdnow_events), "--model-dir", str(models),
                        "--weights", "monetary=0"], capsys)  # fmt: skip
    assert code == 2 and "(0, 100]" in err


def test_records_kept_as_bytes_give_the_same_outputs_as_records_kept_as_objects(
    cdnow: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With room for 50 records as objects, nearly every lookup decodes the store's bytes."""
    from scoring import replay as replay_module

    outputs = []
    for name, cached in (("objects", replay_module.CACHED_RECORDS), ("bytes", 50)):
        monkeypatch.setattr(replay_module, "CACHED_RECORDS", cached)
        code, _, err = run(replay(cdnow, tmp_path / name), capsys)
        assert code == 0, err
        outputs.append(
            [
                (tmp_path / name / f).read_bytes()
                for f in ("changes.jsonl", "band-changes.jsonl", "assignments.jsonl")
            ]
        )
    assert outputs[0] == outputs[1]
    assert len(read_jsonl(tmp_path / "bytes" / "assignments.jsonl")) > 1_000
