"""Usage errors: one line naming the problem, exit code 2."""

from __future__ import annotations

import pytest

from rescorer.cli import main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nonsense"], "invalid choice: 'nonsense'"),
        (["kafka", "restart"], "invalid choice: 'restart'"),
        (["kafka", "start", "--port", "x"], "invalid int value: 'x'"),
        (["kafka", "start", "--port", "70000"], "--port 70000 is not a TCP port"),
        (["schemas", "check", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err


def test_schemas_check_passes_on_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "check"]) == 0
    assert capsys.readouterr().out == ""
