"""``rescorer worker`` refuses bad settings with one line and exit code 2, before any I/O."""

from __future__ import annotations

import pytest

from streams.settings import WorkerSettings
from tests.support.cli import run


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--margin", "1"], {}, "--margin: 1 is not a margin"),
        (["--learning-rate", "2"], {}, "--learning-rate: 2 is not a learning rate"),
        (
            ["--partitions", "0"],
            {},
            "RESCORER_PARTITIONS: Input should be greater than or equal to 1",
        ),
        ([], {"RESCORER_CLOCK": "sundial"}, "RESCORER_CLOCK: Input should be 'event' or 'wall'"),
        ([], {"RESCORER_SWEEP_PERIOD_HOURS": "-1"}, "RESCORER_SWEEP_PERIOD_HOURS"),
        (
            [],
            {"RESCORER_STORE": "rocksdb://"},
            "RESCORER_STORE: Input should be 'rescorer://' or 'memory://'",
        ),
        (
            [],
            {"RESCORER_PROCESSING_GUARANTEE": "exactly_once", "RESCORER_STORE": "memory://"},
            "RESCORER_PROCESSING_GUARANTEE=exactly_once needs RESCORER_STORE=rescorer://",
        ),
        (
            [],
            {"RESCORER_PROCESSING_GUARANTEE": "twice"},
            "RESCORER_PROCESSING_GUARANTEE: Input should be 'at_least_once' or 'exactly_once'",
        ),
        (
            [],
            {"RESCORER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "needs RESCORER_KAFKA_SASL_MECHANISM",
        ),
    ],
)
def test_bad_settings_exit_2(
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run(["worker", *argv], capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) <= 2


def test_settings_build_the_core_config() -> None:
    settings = WorkerSettings(hysteresis_margin=0.2, learning_rate=0.0, sweep_period_hours=12)
    config = settings.rescore_config()
    assert config.margin == 0.2 and config.learning_rate == 0.0
    assert config.sweep_period.total_seconds() == 12 * 3600
    assert config.recheck_period.days == 30
