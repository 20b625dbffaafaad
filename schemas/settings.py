"""Settings shared by every deployable: the Kafka connection and topic names.

Each deployable (worker, trainer, CLI tools) subclasses `RescorerSettings`;
values come from ``RESCORER_*`` environment variables and are read once, at
the entry point, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class TopicNames(BaseSettings):
    """Topic names; every one can be overridden, e.g. ``RESCORER_TOPIC_EVENTS``."""

    model_config = SettingsConfigDict(env_prefix="RESCORER_TOPIC_", extra="ignore", frozen=True)

    events: str = "customer-events"
    changes: str = "segment-changes"
    assignments: str = "customer-segments"
    dead_letters: str = "customer-events-dlq"
    models: str = "segment-models"
    retrain_requests: str = "retrain-requests"


class RescorerSettings(BaseSettings):
    """Connection settings every deployable shares (prefix ``RESCORER_``)."""

    model_config = SettingsConfigDict(env_prefix="RESCORER_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_client_id: str = "segment-rescorer"
    model_dir: Path = Path("./models")
    topics: TopicNames = Field(default_factory=TopicNames)

    @model_validator(mode="after")
    def _security_is_complete(self) -> RescorerSettings:
        if self.kafka_security_protocol.startswith("SASL"):
            missing = [
                name
                for name, value in (
                    ("RESCORER_KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
                    ("RESCORER_KAFKA_SASL_USERNAME", self.kafka_sasl_username),
                    ("RESCORER_KAFKA_SASL_PASSWORD", self.kafka_sasl_password),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"{self.kafka_security_protocol} needs " + ", ".join(missing))
        if self.kafka_ssl_cafile is not None and not self.kafka_ssl_cafile.is_file():
            raise ValueError(f"RESCORER_KAFKA_SSL_CAFILE {self.kafka_ssl_cafile} is not a file")
        return self

    @property
    def bootstrap_list(self) -> list[str]:
        """Bootstrap servers as a list of ``host:port``."""
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]

    def kafka_python_config(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients (producer, consumer, admin)."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_list,
            "security_protocol": self.kafka_security_protocol,
            "client_id": self.kafka_client_id,
        }
        if self.kafka_sasl_mechanism is not None:
            config["sasl_mechanism"] = self.kafka_sasl_mechanism
            config["sasl_plain_username"] = self.kafka_sasl_username
            config["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        if self.kafka_ssl_cafile is not None:
            config["ssl_cafile"] = str(self.kafka_ssl_cafile)
        return config
