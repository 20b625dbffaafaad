"""A throwaway CA and a broker certificate for 127.0.0.1, made with the JDK's keytool."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "test-tls-pass"
SAN = "SAN=ip:127.0.0.1,dns:localhost"


@dataclass(frozen=True)
class TlsFiles:
    """The broker's PKCS12 keystore and the CA certificate clients trust."""

    keystore: Path
    ca_pem: Path
    password: str = PASSWORD


def _keytool(*args: str) -> None:
    keytool = shutil.which("keytool")
    if keytool is None:
        raise FileNotFoundError("keytool (from the JDK) is not on PATH")
    done = subprocess.run([keytool, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"keytool {args[0]} failed: {done.stdout}{done.stderr}")


def make_tls(directory: Path) -> TlsFiles:
    """A CA, and a keystore holding a key for 127.0.0.1 signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, broker = directory / "ca.p12", directory / "broker.p12"
    ca_pem, csr, signed = directory / "ca.pem", directory / "broker.csr", directory / "broker.pem"
    common = ["-storetype", "PKCS12", "-storepass", PASSWORD, "-keypass", PASSWORD]
    _keytool("-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048",
             "-dname", "CN=segment-rescorer test CA", "-ext", "bc:c", "-validity", "2",
             "-keystore", str(ca), *common)  # fmt: skip
    _keytool("-exportcert", "-alias", "ca", "-rfc", "-file", str(ca_pem),
             "-keystore", str(ca), "-storepass", PASSWORD)  # fmt: skip
    _keytool("-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
             "-dname", "CN=localhost", "-ext", SAN, "-validity", "2",
             "-keystore", str(broker), *common)  # fmt: skip
    _keytool("-certreq", "-alias", "broker", "-file", str(csr),
             "-keystore", str(broker), "-storepass", PASSWORD)  # fmt: skip
    _keytool("-gencert", "-alias", "ca", "-infile", str(csr), "-outfile", str(signed),
             "-rfc", "-ext", SAN, "-validity", "2",
             "-keystore", str(ca), "-storepass", PASSWORD)  # fmt: skip
    _keytool("-importcert", "-alias", "ca", "-file", str(ca_pem), "-noprompt",
             "-keystore", str(broker), "-storepass", PASSWORD)  # fmt: skip
    _keytool("-importcert", "-alias", "broker", "-file", str(signed),
             "-keystore", str(broker), "-storepass", PASSWORD)  # fmt: skip
    return TlsFiles(broker, ca_pem)
