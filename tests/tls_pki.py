"""Throwaway test PKI made with the ``openssl`` CLI: a CA, a server cert for localhost/127.0.0.1/::1,
a client cert, and a second CA with its own server cert (to play an untrusted server).

Follows ``rsyslog-tls-relp.md`` §2 (extensions that also pass ``ssl.VERIFY_X509_STRICT``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PKI", "have_openssl", "make_pki"]

SERVER_EXT = """basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
"""
CLIENT_EXT = """basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectAltName=DNS:client.test
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
"""


@dataclass(frozen=True)
class PKI:
    """Paths of the files :func:`make_pki` wrote (PEM)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path  # the client key under ``client_key_password``
    client_key_password: str
    other_ca: Path  # a CA nobody trusts
    other_server_cert: Path  # a localhost cert signed by other_ca
    other_server_key: Path


def have_openssl() -> bool:
    """True when the ``openssl`` command is on PATH."""
    return shutil.which("openssl") is not None


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str, cn: str) -> None:
    _run(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        "-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip


def _leaf(d: Path, name: str, cn: str, ca: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(ext)
    _run(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", f"/CN={cn}",
        "-keyout", f"{name}.key", "-out", f"{name}.csr",
        cwd=d,
    )  # fmt: skip
    _run(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        cwd=d,
    )  # fmt: skip


def make_pki(directory: Path) -> PKI:
    """Write the PKI into ``directory`` (about a second of RSA key generation)."""
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    _ca(d, "ca", "siemfmt Test CA")
    _leaf(d, "server", "localhost", "ca", SERVER_EXT)
    _leaf(d, "client", "client.test", "ca", CLIENT_EXT)
    password = "s3cret-passphrase"
    _run(
        "pkey", "-in", "client.key", "-aes256", "-passout", f"pass:{password}", "-out", "client-enc.key",
        cwd=d,
    )  # fmt: skip
    _ca(d, "other-ca", "Untrusted CA")
    _leaf(d, "other-server", "localhost", "other-ca", SERVER_EXT)
    return PKI(
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        client_key_encrypted=d / "client-enc.key",
        client_key_password=password,
        other_ca=d / "other-ca.pem",
        other_server_cert=d / "other-server.pem",
        other_server_key=d / "other-server.key",
    )
