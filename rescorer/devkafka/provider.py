"""Choose where a real broker comes from: a configured one, Docker, or local jars."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from rescorer.devkafka.jars import JarFetchError, cache_root
from rescorer.devkafka.local import LocalKafka, LocalKafkaError
from rescorer.devkafka.probe import broker_responds

BOOTSTRAP_ENV = "RESCORER_KAFKA_BOOTSTRAP_SERVERS"
DOCKER_IMAGE = "confluentinc/cp-kafka:7.9.1"  # ships Apache Kafka 3.9

HOW_TO_PROVIDE = (
    "no Kafka broker available; provide one of: "
    f"(1) {BOOTSTRAP_ENV}=host:port of a reachable broker, "
    "(2) a running Docker engine (testcontainers starts Kafka in KRaft mode), "
    "(3) Java 17 and Maven on PATH (Apache Kafka's jars are fetched from Maven Central)"
)


class BrokerUnavailable(RuntimeError):
    """None of the three ways of getting a broker worked."""


@dataclass
class ProvidedBroker:
    """A broker ready for clients, and where it came from."""

    bootstrap_servers: str
    kind: Literal["configured", "docker", "local"]
    local: LocalKafka | None = None


def docker_available(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a Docker engine answers ``/_ping`` (the client alone is not enough).

    Probed with a plain socket so that a missing engine leaves no half-open
    client behind.
    """
    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    parsed = urlparse(host)
    try:
        if parsed.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(3)
            with sock:
                sock.connect(parsed.path)
                return _pings(sock)
        if parsed.scheme in {"tcp", "http"} and parsed.hostname and parsed.port:
            with socket.create_connection((parsed.hostname, parsed.port), timeout=3) as sock:
                return _pings(sock)
    except OSError:
        return False
    return False


def _pings(sock: socket.socket) -> bool:
    sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
    status_line = sock.recv(64).split(b"\r\n", 1)[0]
    return status_line.startswith(b"HTTP/1.") and b" 200" in status_line


@contextlib.contextmanager
def _docker_broker() -> Iterator[ProvidedBroker]:
    from testcontainers.community.kafka import KafkaContainer

    container: Any = (
        KafkaContainer(DOCKER_IMAGE)
        .with_kraft()
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    with container as kafka:
        yield ProvidedBroker(str(kafka.get_bootstrap_server()), "docker")


@contextlib.contextmanager
def provide_broker(environ: dict[str, str] | None = None) -> Iterator[ProvidedBroker]:
    """Yield a reachable broker; stop it afterwards if this function started it."""
    env = dict(os.environ) if environ is None else environ
    configured = env.get(BOOTSTRAP_ENV, "").strip()
    if configured:
        if not broker_responds(configured, timeout_ms=10_000):
            raise BrokerUnavailable(f"{BOOTSTRAP_ENV}={configured} is set but does not respond")
        yield ProvidedBroker(configured, "configured")
        return
    if docker_available():
        with _docker_broker() as broker:
            yield broker
        return
    if shutil.which("java") is None or shutil.which("mvn") is None:
        raise BrokerUnavailable(HOW_TO_PROVIDE)
    root = cache_root() / "brokers"
    root.mkdir(parents=True, exist_ok=True)
    local = LocalKafka(Path(tempfile.mkdtemp(prefix="kafka-", dir=root)))
    try:
        local.start()
    except (LocalKafkaError, JarFetchError) as exc:
        local.stop()
        raise BrokerUnavailable(f"{HOW_TO_PROVIDE}; the local broker failed: {exc}") from exc
    try:
        yield ProvidedBroker(local.bootstrap_servers, "local", local)
    finally:
        local.stop()
