"""Settings shared by every deployable: the Kafka connection and topic names.

Each deployable (worker, trainer, CLI tools) subclasses `RescorerSettings`;
values come from ``RESCORER_*`` environment variables and are read once, at
the entry point, never at import time.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.signing import MIN_KEY_BYTES

DEFAULT_HOLDOUT_SALT: Final = "segment-rescorer-holdout"
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class TopicNames(BaseSettings):
    """Topic names; every one can be overridden, e.g. ``RESCORER_TOPIC_EVENTS``."""

    model_config = SettingsConfigDict(env_prefix="RESCORER_TOPIC_", extra="ignore", frozen=True)

    events: str = "customer-events"
    changes: str = "segment-changes"
    band_changes: str = "risk-band-changes"
    assignments: str = "customer-segments"
    dead_letters: str = "customer-events-dlq"
    models: str = "segment-models"
    retrain_requests: str = "retrain-requests"
    feedback: str = "segment-feedback"
    feedback_latest: str = "segment-feedback-latest"


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
    model_signing_key: SecretStr | None = None
    """Signs published artifacts (HMAC-SHA256); a secret, never logged."""
    model_verify_keys: SecretStr | None = None
    """Comma-separated keys a worker accepts signatures from (default: the signing key)."""
    holdout_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Share of every segment's customers held out as a control group (0 = off)."""
    holdout_segment_shares: dict[int, Annotated[float, Field(ge=0.0, lt=1.0)]] = Field(
        default_factory=dict
    )
    """Per-segment overrides, as JSON: ``{"3": 0.2}``."""
    holdout_salt: Annotated[str, Field(min_length=1)] = DEFAULT_HOLDOUT_SALT
    """Keys the holdout hash; changing it reshuffles who is held out."""
    traits_horizon_days: Annotated[float, Field(gt=0.0, le=3650.0)] = 90.0
    """Horizon of `expected_purchases` and `expected_value` in every trait."""
    risk_band_medium: Annotated[float, Field(gt=0.0, le=100.0)] = 50.0
    """Churn risk (0-100) from which a customer is in the Medium band."""
    risk_band_high: Annotated[float, Field(gt=0.0, le=100.0)] = 75.0
    """Churn risk from which a customer is in the High band."""
    topics: TopicNames = Field(default_factory=TopicNames)

    @model_validator(mode="after")
    def _bands_are_ordered(self) -> RescorerSettings:
        if not self.risk_band_medium < self.risk_band_high:
            raise ValueError(
                f"RESCORER_RISK_BAND_MEDIUM ({self.risk_band_medium:g}) must be below "
                f"RESCORER_RISK_BAND_HIGH ({self.risk_band_high:g})"
            )
        return self

    @model_validator(mode="after")
    def _keys_are_long_enough(self) -> RescorerSettings:
        for name, keys in (
            ("RESCORER_MODEL_SIGNING_KEY", [self.signing_key] if self.signing_key else []),
            ("RESCORER_MODEL_VERIFY_KEYS", self.verification_keys),
        ):
            if any(len(key) < MIN_KEY_BYTES for key in keys):
                raise ValueError(f"{name}: every key needs at least {MIN_KEY_BYTES} bytes")
        return self

    @property
    def signing_key(self) -> bytes | None:
        """The key artifacts are signed with, if one is configured."""
        key = self.model_signing_key
        return key.get_secret_value().encode() if key else None

    @property
    def verification_keys(self) -> list[bytes]:
        """Keys whose signatures are accepted; empty: artifacts are not checked."""
        if self.model_verify_keys is not None:
            listed = self.model_verify_keys.get_secret_value().split(",")
            return [key.strip().encode() for key in listed if key.strip()]
        return [self.signing_key] if self.signing_key else []

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

    def environment(self) -> dict[str, str]:
        """The ``RESCORER_*`` variables that configure a child process like this one.

        Every field that was set (by argument or by the environment) and every
        topic name; secrets are passed on as they are, since a child needs them.

        >>> RescorerSettings().environment()["RESCORER_TOPIC_EVENTS"]
        'customer-events'
        """
        env = {f"RESCORER_TOPIC_{name.upper()}": str(value)
               for name, value in self.topics.model_dump().items()}  # fmt: skip
        for name in sorted(self.model_fields_set - {"topics"}):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, dict | list):
                value = json.dumps(value)
            env[f"RESCORER_{name.upper()}"] = str(value)
        return env

    @property
    def bootstrap_list(self) -> list[str]:
        """Bootstrap servers as a list of ``host:port``."""
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]

    def sasl_options(self) -> dict[str, str]:
        """``sasl_mechanism``, ``sasl_plain_username``, ``sasl_plain_password``, or {}.

        The one place SASL settings become client options: kafka-python and
        aiokafka take the same names, and Faust's credentials are built from them.
        """
        if self.kafka_sasl_mechanism is None:
            return {}
        password = self.kafka_sasl_password
        return {
            "sasl_mechanism": self.kafka_sasl_mechanism,
            "sasl_plain_username": self.kafka_sasl_username or "",
            "sasl_plain_password": password.get_secret_value() if password else "",
        }

    def client_options(self) -> dict[str, Any]:
        """What every Kafka client is given: servers, protocol, client id, SASL."""
        return {
            "bootstrap_servers": self.bootstrap_list,
            "security_protocol": self.kafka_security_protocol,
            "client_id": self.kafka_client_id,
            **self.sasl_options(),
        }

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context trusting the configured CA, or None for plaintext protocols."""
        if not self.kafka_security_protocol.endswith("SSL"):
            return None
        cafile = str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
        return ssl.create_default_context(cafile=cafile)

    def aiokafka_config(self) -> dict[str, Any]:
        """Keyword arguments shared by aiokafka producers, consumers and admin clients
        (they take TLS as a context object, kafka-python as file names)."""
        config = self.client_options()
        context = self.ssl_context()
        if context is not None:
            config["ssl_context"] = context
        return config

    def kafka_python_config(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients (producer, consumer, admin)."""
        config = self.client_options()
        if self.kafka_ssl_cafile is not None:
            config["ssl_cafile"] = str(self.kafka_ssl_cafile)
        return config


def transactional_id_prefix(app_id: str) -> str:
    """What the transactional ids of a worker's steps start with (exactly-once mode:
    ``<app id>-step-<partition>``, `streams.transactions`; granted by `rescorer acl`).

    >>> transactional_id_prefix("segment-rescorer")
    'segment-rescorer-step-'
    """
    return f"{app_id}-step-"
