"""Settings come from RESCORER_* variables and reach every client config."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.settings import RescorerSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RESCORER_KAFKA_BOOTSTRAP_SERVERS", "RESCORER_MODEL_DIR", "RESCORER_TOPIC_EVENTS"):
        monkeypatch.delenv(var, raising=False)
    settings = RescorerSettings()
    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert settings.model_dir == Path("models")
    assert settings.topics.events == "customer-events"
    assert settings.topics.dead_letters == "customer-events-dlq"
    assert settings.topics.assignments == "customer-segments"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESCORER_KAFKA_BOOTSTRAP_SERVERS", "a:1, b:2")
    monkeypatch.setenv("RESCORER_MODEL_DIR", "/srv/models")
    monkeypatch.setenv("RESCORER_TOPIC_EVENTS", "events-v2")
    settings = RescorerSettings()
    assert settings.bootstrap_list == ["a:1", "b:2"]
    assert settings.model_dir == Path("/srv/models")
    assert settings.topics.events == "events-v2"


def test_sasl_settings_reach_kafka_python_and_hide_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("RESCORER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("RESCORER_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("RESCORER_KAFKA_SASL_USERNAME", "rescorer")
    monkeypatch.setenv("RESCORER_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("RESCORER_KAFKA_SSL_CAFILE", str(ca))
    settings = RescorerSettings()
    assert "s3cret" not in repr(settings)
    config = settings.kafka_python_config()
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "rescorer"
    assert config["sasl_plain_password"] == "s3cret"
    assert config["ssl_cafile"] == str(ca)


def test_incomplete_sasl_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESCORER_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.delenv("RESCORER_KAFKA_SASL_PASSWORD", raising=False)
    monkeypatch.setenv("RESCORER_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("RESCORER_KAFKA_SASL_USERNAME", "u")
    with pytest.raises(ValidationError, match="RESCORER_KAFKA_SASL_PASSWORD"):
        RescorerSettings()


def test_missing_ca_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESCORER_KAFKA_SSL_CAFILE", str(tmp_path / "nope.pem"))
    with pytest.raises(ValidationError, match="is not a file"):
        RescorerSettings()
