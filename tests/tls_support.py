"""Certificates and web config files for the TLS and basic-auth tests, made in the test.

trustme makes a throwaway CA and certificates signed by it (server: 127.0.0.1 and
localhost; client: a name in a client CA), written as PEM files like an operator's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import trustme
import yaml

USER = "prometheus"
PASSWORD = "s3cret-scrape-pass"


@dataclass
class Pki:
    folder: Path
    ca: trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path
    client_ca_file: Path
    client_cert_file: Path
    client_key_file: Path

    def renew(self) -> trustme.LeafCert:
        """A new server certificate in the same files, as a renewal would leave them."""
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.cert_chain_pems[0].write_to_path(str(self.cert_file))
        cert.private_key_pem.write_to_path(str(self.key_file))
        return cert


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca, client_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = client_ca.issue_cert("scraper@example.test")
    pki = Pki(
        folder,
        ca,
        folder / "ca.crt",
        folder / "server.crt",
        folder / "server.key",
        folder / "clients-ca.crt",
        folder / "client.crt",
        folder / "client.key",
    )
    ca.cert_pem.write_to_path(str(pki.ca_file))
    server.cert_chain_pems[0].write_to_path(str(pki.cert_file))
    server.private_key_pem.write_to_path(str(pki.key_file))
    client_ca.cert_pem.write_to_path(str(pki.client_ca_file))
    client.cert_chain_pems[0].write_to_path(str(pki.client_cert_file))
    client.private_key_pem.write_to_path(str(pki.client_key_file))
    return pki


def bcrypt_hash(password: str = PASSWORD, cost: int = 4) -> str:
    # The lowest cost keeps the tests quick; the exporter accepts any cost.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def write_config(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def tls_section(**overrides: Any) -> dict[str, Any]:
    """A tls_server_config with paths relative to the config file's folder."""
    return {"cert_file": "server.crt", "key_file": "server.key", **overrides}


class BcryptGate:
    """A stand-in for ``bcrypt.checkpw`` whose checks hold until ``open()``.

    ``entered`` is set once a check is running; ``passwords`` lists the checks begun, in order.
    """

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.passwords: list[bytes] = []
        self._real = bcrypt.checkpw

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        self.passwords.append(password)
        self.entered.set()
        self.opened.wait(timeout=30)
        return self._real(password, hashed)

    def open(self) -> None:
        self.opened.set()
