"""``rescorer train``, ``models`` and ``convert-cdnow`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run


def test_convert_cdnow_is_deterministic(cdnow_events: Path) -> None:
    lines = cdnow_events.read_text().splitlines()
    assert len(lines) == 6919
    first = json.loads(lines[0])
    assert first["event_id"] == "cdnow-00004-19970101-0"
    assert first["occurred_at"].startswith("1997-01-01T12:00:00")
    ids = [json.loads(line)["event_id"] for line in lines]
    assert len(set(ids)) == len(ids)


def test_train_on_cdnow_writes_artifact_and_report(
    cdnow_events: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models, report = tmp_path / "models", tmp_path / "report"
    code, out, err = run(
        [
            "train",
            "--events",
            str(cdnow_events),
            "--model-dir",
            str(models),
            "--report",
            str(report),
            "--bootstrap",
            "5",
        ],
        capsys,
    )
    assert code == 0, err
    assert "model v1" in out and "active: v1" in out
    assert "2349 customers" in out
    artifact = json.loads((models / "model-v000001.json").read_text())
    assert artifact["n_customers"] == 2349
    html = (report / "index.html").read_text()
    for png in ("k_selection", "silhouette", "profiles", "recency_monetary", "sizes",
                "traits_conditional"):  # fmt: skip
        assert (report / f"{png}.png").stat().st_size > 1000
    assert html.count("data:image/png;base64,") == 6
    assert "BG/NBD over 2,349 customers" in html
    assert "Champions" in html

    code, out, _ = run(
        [
            "train",
            "--events",
            str(cdnow_events),
            "--model-dir",
            str(models),
            "--bootstrap",
            "2",
            "--holdout-days",
            "0",
        ],
        capsys,
    )
    assert code == 0
    assert "model v2" in out and "active: v1" in out  # a retrain is not promoted unasked
    code, out, _ = run(["models", "list", "--model-dir", str(models)], capsys)
    assert code == 0
    assert "* v1" in out and "  v2" in out
    assert run(["models", "promote", "2", "--model-dir", str(models)], capsys)[0] == 0
    code, out, _ = run(["models", "rollback", "--model-dir", str(models)], capsys)
    assert (code, out.strip()) == (0, "active: v1")
    code, out, _ = run(["models", "show", "1", "--model-dir", str(models)], capsys)
    assert json.loads(out)["version"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--events", "/nonexistent/file.csv"], "no such file or directory: /nonexistent"),
        (["--events", "EVENTS", "--as-of", "1990-01-01T00:00:00Z"], "is before every event"),
        (["--events", "EVENTS", "--as-of", "1998-01-01"], "needs a timezone"),
        (["--events", "EVENTS", "--as-of", "soon"], "is not an ISO-8601 timestamp"),
        (["--events", "EVENTS", "--k", "1"], "at least 2 segments"),
        (["--events", "EVENTS", "--k", "many"], "must be 'auto' or an integer"),
        (["--events", "EVENTS", "--k-min", "5", "--k-max", "4"], "need 2 <= k-min <= k-max"),
        (["--events", "EVENTS", "--max-invalid-share", "2"], "not a share"),
        (["--events", "EVENTS", "--k", "3000"], "too few for 3000 segments"),
        ([], "name the events: --events PATH..., --from-kafka, or both"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    extra: list[str],
    message: str,
    cdnow_events: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "train",
        "--model-dir",
        str(tmp_path),
        "--bootstrap",
        "1",
        *[str(cdnow_events) if a == "EVENTS" else a for a in extra],
    ]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_empty_and_unreadable_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = run(["train", "--events", str(empty), "--model-dir", str(tmp_path)], capsys)
    assert code == 2
    assert "no valid events" in err
    garbage = tmp_path / "x.parquet"
    garbage.write_bytes(b"not parquet")
    code, _, err = run(["train", "--events", str(garbage), "--model-dir", str(tmp_path)], capsys)
    assert code == 2
    assert "unreadable parquet file" in err
    assert len(err.strip().splitlines()) == 1


def test_models_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["models", "promote", "4", "--model-dir", str(tmp_path)], capsys)
    assert (code, "no model version 4" in err) == (2, True)
    code, _, err = run(["models", "show", "--model-dir", str(tmp_path)], capsys)
    assert (code, "no active model" in err) == (2, True)
    code, _, err = run(["convert-cdnow", str(tmp_path / "no.csv"), "--out", "x.jsonl"], capsys)
    assert (code, "no such file" in err) == (2, True)
