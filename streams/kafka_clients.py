"""Client configuration for aiokafka and Faust, derived from the shared settings.

kafka-python's configuration is a plain dict and lives with the settings
(`schemas.settings.RescorerSettings.kafka_python_config`); the two asyncio
clients need objects (an SSL context, Faust credentials) built here, at the edge.
"""

from __future__ import annotations

import ssl
from typing import Any

from schemas.settings import RescorerSettings


def ssl_context(settings: RescorerSettings) -> ssl.SSLContext | None:
    """A TLS context trusting the configured CA, or None for plaintext protocols."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    return ssl.create_default_context(cafile=cafile)


def aiokafka_config(settings: RescorerSettings) -> dict[str, Any]:
    """Keyword arguments shared by aiokafka producers, consumers and admin clients."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_list,
        "security_protocol": settings.kafka_security_protocol,
        "client_id": settings.kafka_client_id,
    }
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
    if settings.kafka_sasl_mechanism is not None:
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value()
            if settings.kafka_sasl_password
            else None
        )
    return config


def faust_broker_settings(settings: RescorerSettings) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` for `faust.App`."""
    import faust

    broker = ";".join(f"kafka://{server}" for server in settings.bootstrap_list)
    credentials: Any = None
    context = ssl_context(settings)
    if settings.kafka_sasl_mechanism is not None:
        password = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        )
        credentials = faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password,
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    return {"broker": broker, "broker_credentials": credentials}
