"""One Apache Kafka broker in KRaft combined mode, run from Maven Central jars."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rescorer.devkafka.jars import KAFKA_VERSION, ensure_kafka_jars

_LOG4J = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


class LocalKafkaError(RuntimeError):
    """The local broker could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def terminate(pid: int, grace_seconds: float = 20.0) -> None:
    """SIGTERM a process group (the broker shuts down cleanly), SIGKILL it if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: probe with signal 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return not _zombie(pid)
    return waited == 0


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


@dataclass
class LocalKafka:
    """A single-node KRaft broker on loopback.

    Offsets and transaction-state topics are at replication 1 so consumer
    groups and exactly-once transactions work on one node, and
    ``group.initial.rebalance.delay.ms=0`` so consumers join at once.
    """

    workdir: Path
    port: int = 0
    host: str = "127.0.0.1"
    version: str = KAFKA_VERSION
    heap: str = "768m"
    extra_properties: Mapping[str, str] = field(default_factory=dict)
    scram_users: Mapping[str, str] = field(default_factory=dict)
    """User -> password for a SASL listener with SCRAM-SHA-256 (none if empty)."""
    sasl_port: int = 0
    tls_keystore: Path | None = None
    """A PKCS12 keystore (password `tls_password`): the SASL listener is then SASL_SSL."""
    tls_password: str = ""
    super_users: tuple[str, ...] = ()
    """With any: KRaft's StandardAuthorizer, these SCRAM users (and the PLAINTEXT
    listener, which the broker and controller talk over) are super users, and
    every other principal may do only what an ACL grants."""
    pid: int | None = None
    _controller_port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of the PLAINTEXT listener."""
        return f"{self.host}:{self.port}"

    @property
    def sasl_bootstrap_servers(self) -> str:
        """``host:port`` of the SASL (SCRAM-SHA-256) listener, if configured."""
        return f"{self.host}:{self.sasl_port}"

    @property
    def log_path(self) -> Path:
        """Where the broker's own log goes."""
        return self.workdir / "broker.log"

    def properties(self) -> dict[str, str]:
        """The broker's server.properties."""
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self._controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},"
            f"CONTROLLER://{self.host}:{self._controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        if self.scram_users:
            protocol = "SASL_PLAINTEXT" if self.tls_keystore is None else "SASL_SSL"
            sasl = f"{protocol}://{self.host}:{self.sasl_port}"
            props["listeners"] += f",{sasl}"
            props["advertised.listeners"] += f",{sasl}"
            props["listener.security.protocol.map"] += f",{protocol}:{protocol}"
            props["sasl.enabled.mechanisms"] = "SCRAM-SHA-256"
            props[f"listener.name.{protocol.lower()}.scram-sha-256.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
            if self.tls_keystore is not None:
                props["ssl.keystore.type"] = "PKCS12"
                props["ssl.keystore.location"] = str(self.tls_keystore)
                props["ssl.keystore.password"] = self.tls_password
                props["ssl.key.password"] = self.tls_password
        if self.super_users:
            props["authorizer.class.name"] = (
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            )
            supers = ["User:ANONYMOUS", *(f"User:{user}" for user in self.super_users)]
            props["super.users"] = ";".join(supers)
            props["allow.everyone.if.no.acl.found"] = "false"
        props.update(self.extra_properties)
        return props

    def _java(self, libs: Path, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise LocalKafkaError("java is not on PATH; Java 17 is needed to run Kafka")
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def start(self, timeout: float = 60.0) -> str:
        """Format (first time only) and start the broker; return bootstrap servers.

        Restarting on an existing work directory keeps its data and port, as a
        real broker restart would.
        """
        libs = ensure_kafka_jars(self.version)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port(self.host)
        elif port_open(self.host, self.port):
            raise LocalKafkaError(f"port {self.host}:{self.port} is already in use")
        while self._controller_port in (0, self.port):  # the OS may hand out the same port twice
            self._controller_port = free_port(self.host)
        while self.scram_users and self.sasl_port in (0, self.port, self._controller_port):
            self.sasl_port = free_port(self.host)
        config = self.workdir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        (self.workdir / "log4j.properties").write_text(_LOG4J)
        if not (self.workdir / "data" / "meta.properties").is_file():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            formatted = subprocess.run(  # noqa: S603 - fixed argv
                self._java(
                    libs,
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(config),
                    *(
                        f"--add-scram=SCRAM-SHA-256=[name={user},password={password}]"
                        for user, password in self.scram_users.items()
                    ),
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if formatted.returncode != 0:
                raise LocalKafkaError("kafka storage format failed: " + formatted.stderr[-500:])
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv
                self._java(libs, "kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = self._process.pid
        self._wait_ready(timeout)
        return self.bootstrap_servers

    def _wait_ready(self, timeout: float) -> None:
        from rescorer.devkafka.probe import broker_responds

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                code, tail = self._process.returncode, self._log_tail()
                self.stop()
                raise LocalKafkaError(f"Kafka exited with code {code}: {tail}")
            if port_open(self.host, self.port) and broker_responds(self.bootstrap_servers):
                return
            time.sleep(0.25)
        tail = self._log_tail()
        self.stop()
        raise LocalKafkaError(f"Kafka not ready after {timeout:.0f}s: {tail}")

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return "(no log)"

    def stop(self, *, keep_data: bool = False, kill: bool = False) -> None:
        """Stop the broker (``kill`` = SIGKILL at once); remove its data unless asked not to."""
        if self.pid is not None:
            terminate(self.pid, grace_seconds=0.0 if kill else 20.0)
            if self._process is not None:
                self._process.wait()
            self.pid = None
            self._process = None
        if not keep_data:
            shutil.rmtree(self.workdir, ignore_errors=True)
