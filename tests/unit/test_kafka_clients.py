"""Client configuration: TLS contexts, Faust credentials, error explanations.

Pure derivations from the settings; connecting is the integration tier's job.
"""

from __future__ import annotations

import ssl

import faust
import pytest

from schemas.settings import RescorerSettings
from streams.kafka_clients import explain_kafka_error, faust_broker_settings


def settings(**values: object) -> RescorerSettings:
    """Explicit values win over any RESCORER_* variable of the environment."""
    base: dict[str, object] = {
        "kafka_bootstrap_servers": "k1:9092, k2:9093",
        "kafka_security_protocol": "PLAINTEXT",
        "kafka_sasl_mechanism": None,
        "kafka_sasl_username": None,
        "kafka_sasl_password": None,
        "kafka_ssl_cafile": None,
        "kafka_client_id": "test-client",
    }
    return RescorerSettings(**{**base, **values})  # type: ignore[arg-type]


def test_plaintext_has_no_tls_context_and_lists_every_server() -> None:
    plain = settings()
    assert plain.ssl_context() is None
    config = plain.aiokafka_config()
    assert config["bootstrap_servers"] == ["k1:9092", "k2:9093"]
    assert config["security_protocol"] == "PLAINTEXT" and config["client_id"] == "test-client"
    assert "ssl_context" not in config and "sasl_mechanism" not in config
    assert faust_broker_settings(plain) == {
        "broker": "kafka://k1:9092;kafka://k2:9093",
        "broker_credentials": None,
    }


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_tls_protocols_get_a_verifying_context(protocol: str) -> None:
    extra = {}
    if protocol.startswith("SASL"):
        extra = {"kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u",
                 "kafka_sasl_password": "p"}  # fmt: skip
    tls = settings(kafka_security_protocol=protocol, **extra)
    context = tls.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert isinstance(tls.aiokafka_config()["ssl_context"], ssl.SSLContext)


def test_sasl_becomes_faust_credentials_with_the_password_and_tls_only_credentials_otherwise() -> (
    None
):
    sasl = settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-256",
                    kafka_sasl_username="svc", kafka_sasl_password="s3cret")  # fmt: skip
    config = sasl.aiokafka_config()
    assert config["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("svc", "s3cret")
    credentials = faust_broker_settings(sasl)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("svc", "s3cret")
    assert credentials.ssl_context is None
    tls = faust_broker_settings(settings(kafka_security_protocol="SSL"))["broker_credentials"]
    assert isinstance(tls, faust.SSLCredentials)


def test_an_unreachable_broker_is_explained_in_one_line_naming_where() -> None:
    refusal = explain_kafka_error(settings(), ConnectionError("no route to host\nretrying"))
    assert str(refusal) == "cannot reach Kafka at k1:9092, k2:9093: no route to host"
    assert not refusal.bad_credentials
    bare = explain_kafka_error(settings(), TimeoutError())
    assert str(bare) == "cannot reach Kafka at k1:9092, k2:9093: TimeoutError"
