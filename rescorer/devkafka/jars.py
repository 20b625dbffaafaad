"""Fetch and cache Apache Kafka's jars from Maven Central with Maven."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

KAFKA_VERSION = "3.9.1"
_POM_TEMPLATE = Path(__file__).with_name("broker-pom.xml")


def cache_root() -> Path:
    """Where downloaded jars and dev-broker state live (``RESCORER_CACHE_DIR`` overrides)."""
    configured = os.environ.get("RESCORER_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "segment-rescorer"


class JarFetchError(RuntimeError):
    """Maven could not provide the Kafka jars."""


def ensure_kafka_jars(version: str = KAFKA_VERSION, root: Path | None = None) -> Path:
    """Return a directory holding every jar the broker needs, fetching it once.

    Concurrent callers (parallel test sessions) serialise on a lock file; the
    directory appears atomically, so a half-finished download is never used.
    """
    root = root or cache_root()
    libs = root / f"kafka-{version}" / "libs"
    if (libs / ".complete").is_file():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarFetchError("Maven (mvn) is not on PATH; it is needed to fetch Kafka's jars")
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"kafka-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (libs / ".complete").is_file():
            return libs
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            pom = Path(scratch) / "pom.xml"
            pom.write_text(_POM_TEMPLATE.read_text().replace("@KAFKA_VERSION@", version))
            out = Path(scratch) / "libs"
            result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={out}",
                    "-DincludeScope=runtime",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0 or not any(out.glob("kafka_2.13-*.jar")):
                tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
                raise JarFetchError("mvn could not fetch Kafka jars: " + " | ".join(tail))
            (out / ".complete").write_text(version)
            if libs.exists():
                shutil.rmtree(libs)
            libs.parent.mkdir(parents=True, exist_ok=True)
            out.rename(libs)
    return libs
