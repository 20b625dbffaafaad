"""Faust's broker credentials, and why Kafka refused us, from the shared settings.

The clients' own configuration lives with the settings
(`schemas.settings.RescorerSettings.kafka_python_config` and `aiokafka_config`);
Faust needs credential objects, built here, at the edge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from schemas.settings import RescorerSettings


def faust_broker_settings(settings: RescorerSettings) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` for `faust.App`."""
    import faust

    broker = ";".join(f"kafka://{server}" for server in settings.bootstrap_list)
    credentials: Any = None
    context = settings.ssl_context()
    sasl = settings.sasl_options()
    if sasl:
        credentials = faust.SASLCredentials(
            username=sasl["sasl_plain_username"],
            password=sasl["sasl_plain_password"],
            ssl_context=context,
            mechanism=sasl["sasl_mechanism"],
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    return {"broker": broker, "broker_credentials": credentials}


class _KafkaLogCapture(logging.Handler):
    """Keeps what kafka-python logs while it connects (it logs the broker's reason)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass(frozen=True)
class KafkaRefusal:
    """Why Kafka could not be used, in one line, and whether the credentials were at fault."""

    message: str
    bad_credentials: bool

    def __str__(self) -> str:
        return self.message


def explain_kafka_error(settings: RescorerSettings, exc: Exception) -> KafkaRefusal:
    """Why Kafka refused us, naming bad credentials when that is the cause.

    kafka-python reports a failed SASL handshake during its version probe as an
    incompatible broker; one more attempt with the version pinned surfaces the
    broker's own reason.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    where = settings.kafka_bootstrap_servers
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if settings.kafka_sasl_mechanism is not None:
        heard = _KafkaLogCapture()
        kafka_log = logging.getLogger("kafka")
        kafka_log.addHandler(heard)
        try:
            KafkaAdminClient(
                **settings.kafka_python_config(), api_version=(2, 8, 0), request_timeout_ms=10_000
            ).close()
        except KafkaError as retry:
            reason = " ".join(str(retry).split())[:300]
        finally:
            kafka_log.removeHandler(heard)
        said = " ".join([reason, *heard.messages])
        if "Authentication failed" in said or "SaslAuthenticationFailed" in said:
            return KafkaRefusal(
                f"Kafka at {where} rejected user {settings.kafka_sasl_username!r} "
                f"({settings.kafka_sasl_mechanism}): authentication failed; check "
                "RESCORER_KAFKA_SASL_USERNAME and RESCORER_KAFKA_SASL_PASSWORD",
                bad_credentials=True,
            )
    return KafkaRefusal(f"cannot reach Kafka at {where}: {reason}", bad_credentials=False)
