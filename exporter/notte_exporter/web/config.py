"""The web config file (``--web.config.file``), in exporter-toolkit's format, kept current.

Operators reuse the file they already have for node_exporter, so the format is
exporter-toolkit's, key for key::

    tls_server_config:
      cert_file: server.crt          # relative paths: relative to this file's folder
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default),
      client_ca_file: clients-ca.crt                 # VerifyClientCertIfGiven, RequireAnyClientCert
      min_version: TLS12             # TLS10..TLS13
      max_version: TLS13
    http_server_config:
      http2: true
      headers:
        Strict-Transport-Security: max-age=31536000
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hashes only

Everything is checked when the file is read, and every problem is reported at once: unknown
keys, a missing or unreadable certificate, a key that does not match its certificate, a
hash that is not bcrypt, a header exporter-toolkit does not allow. At start-up that stops
the exporter (exit 2); while running, a broken edit keeps the last good config and the log
says why. The file and every file it names must be regular files of at most 1 MiB
(files.py): a FIFO, a device or a directory is named as such, never waited on nor read
whole. The file and every file it names are fingerprinted by content, and looked at
again once a second and on SIGHUP, so a renewed certificate is served without a restart.
The daemon looks on a thread of its own (``watch``), so that no request pays for the look
(a quarter of a millisecond for a TLS config, and a hand-off to a worker thread, since the
server's event loop must not read files); without one, ``current()`` looks when a request
finds the last look a second old.

Two departures, both refusals rather than silent weakening: Python's ``ssl`` cannot accept
a client certificate without verifying it, so ``RequireAnyClientCert`` verifies against
``client_ca_file`` like ``RequireAndVerifyClientCert``; and ``cipher_suites``,
``curve_preferences`` and ``client_allowed_sans`` are refused as unsupported rather than
ignored. ``RequestClientCert`` asks nothing, as it enforces nothing. Turning TLS on or off
needs a restart (the listening sockets are made at start-up).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from notte_exporter.files import (
    WEB_FILE_BYTES,
    RegularFile,
    opened_regular_file,
    read_regular_file,
    unreadable,
)
from notte_exporter.settings import WebConfigError

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0

ClientAuth = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
TlsVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
VERIFY_MODES: dict[str, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# exporter-toolkit's list: only these headers may be set, some only to these values.
ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
_UNSUPPORTED = ("cipher_suites", "curve_preferences", "client_allowed_sans")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServerConfig(_Strict):
    cert_file: str = ""
    key_file: str = ""
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: str = ""
    min_version: TlsVersionName = "TLS12"
    max_version: TlsVersionName = "TLS13"
    prefer_server_cipher_suites: bool = True  # accepted; OpenSSL's choice applies
    cipher_suites: list[str] | None = None
    curve_preferences: list[str] | None = None
    client_allowed_sans: list[str] | None = None


class HttpServerConfig(_Strict):
    http2: bool = True
    headers: dict[str, str] = {}


class WebConfigFile(_Strict):
    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig = HttpServerConfig()
    basic_auth_users: dict[str, str] = {}


@dataclass(frozen=True)
class WebConfig:
    """One checked web config: what the server and the access guard need from it."""

    tls: ssl.SSLContext | None
    http2: bool
    headers: tuple[tuple[str, str], ...]
    users: dict[str, bytes]
    summary: dict[str, Any] = field(compare=False)
    fingerprint: str = ""
    # What an unknown user's password is checked against (web/auth.py); made once per config.
    decoy: bytes = field(default=b"", compare=False, repr=False)


def _resolve(base: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else base / path


def referenced_files(path: Path, document: WebConfigFile | None) -> list[Path]:
    if document is None or document.tls_server_config is None:
        return [path]
    tls = document.tls_server_config
    names = [tls.cert_file, tls.key_file, tls.client_ca_file]
    return [path, *(_resolve(path.parent, name) for name in names if name)]


def fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        try:
            digest.update(read_regular_file(file, WEB_FILE_BYTES))
        except OSError as exc:
            digest.update(f"unreadable {exc.errno} {exc.strerror}".encode())
        digest.update(b"\0")
    return digest.hexdigest()


def parse(path: Path) -> WebConfigFile:
    """The file's document, checked against the schema; raises WebConfigError."""
    try:
        text = read_regular_file(path, WEB_FILE_BYTES).decode("utf-8")
    except OSError as exc:
        raise WebConfigError(path, [unreadable(exc)]) from None
    except UnicodeDecodeError as exc:
        raise WebConfigError(path, [f"cannot read it: {exc}"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise WebConfigError(path, [f"not valid YAML{line}"]) from None
    try:
        return WebConfigFile.model_validate(document or {})
    except ValidationError as exc:
        raise WebConfigError(path, [_describe(error) for error in exc.errors()]) from None


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "the file"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    return f"{where}: {error['msg']}"


def load(path: Path) -> WebConfig:
    """Read and check ``path`` and every file it names; raises WebConfigError."""
    document = parse(path)
    files = referenced_files(path, document)
    problems: list[str] = []
    tls = None
    if document.tls_server_config is not None:
        tls = _tls_context(path.parent, document.tls_server_config, problems)
    headers = _headers(document.http_server_config.headers, problems)
    users = _users(document.basic_auth_users, problems)
    if problems:
        raise WebConfigError(path, problems)
    if tls is not None:
        # Set once, here: each handshake is handed this context (web/server.py), and with it
        # this config's choice of protocols, without looking at the config again.
        tls.set_alpn_protocols(
            ["h2", "http/1.1"] if document.http_server_config.http2 else ["http/1.1"]
        )
    return WebConfig(
        tls=tls,
        http2=document.http_server_config.http2,
        headers=headers,
        users=users,
        summary=_summary(document),
        fingerprint=fingerprint(files),
        decoy=decoy_hash(users),
    )


def _tls_context(base: Path, tls: TlsServerConfig, problems: list[str]) -> ssl.SSLContext | None:
    where = "tls_server_config"
    for name in _UNSUPPORTED:
        if getattr(tls, name) is not None:
            problems.append(f"{where}.{name}: not supported by notte-exporter")
    if not tls.cert_file:
        problems.append(f"{where}.cert_file: missing")
    if not tls.key_file:
        problems.append(f"{where}.key_file: missing")
    verify = VERIFY_MODES[tls.client_auth_type]
    if verify != ssl.CERT_NONE and not tls.client_ca_file:
        problems.append(
            f"{where}.client_ca_file: needed with client_auth_type {tls.client_auth_type}"
        )
    if tls.client_ca_file and tls.client_auth_type == "NoClientCert":
        problems.append(
            f"{where}.client_ca_file: set, but client_auth_type NoClientCert never asks for "
            "client certificates"
        )
    if TLS_VERSIONS[tls.min_version] > TLS_VERSIONS[tls.max_version]:
        problems.append(f"{where}: min_version {tls.min_version} is above max_version")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.minimum_version = TLS_VERSIONS[tls.min_version]
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    except (ValueError, ssl.SSLError) as exc:
        problems.append(f"{where}: this OpenSSL refuses the TLS versions: {exc}")
    cert, key = _resolve(base, tls.cert_file), _resolve(base, tls.key_file)
    if tls.cert_file and tls.key_file:
        _load_chain(context, cert, key, problems)
    if tls.client_ca_file:
        ca = _resolve(base, tls.client_ca_file)
        with ExitStack() as opened:
            file = _open(opened, f"{where}.client_ca_file", ca, problems)
            try:
                if file is not None:
                    context.load_verify_locations(cafile=file.reopen)
            except (OSError, ssl.SSLError) as exc:
                problems.append(f"{where}.client_ca_file: cannot load {str(ca)!r}: {_reason(exc)}")
    context.verify_mode = verify
    return context


def _open(opened: ExitStack, where: str, path: Path, problems: list[str]) -> RegularFile | None:
    """``path`` checked and kept open until ``opened`` closes, or None and a problem."""
    try:
        return opened.enter_context(opened_regular_file(path, WEB_FILE_BYTES))
    except FileNotFoundError:
        problems.append(f"{where}: {str(path)!r} does not exist")
    except OSError as exc:
        problems.append(f"{where}: {str(path)!r}: {unreadable(exc)}")
    return None


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path, problems: list[str]) -> None:
    where = "tls_server_config"
    with ExitStack() as opened:
        cert_file = _open(opened, f"{where}.cert_file", cert, problems)
        key_file = _open(opened, f"{where}.key_file", key, problems)
        if cert_file is None or key_file is None:
            return
        try:
            context.load_cert_chain(cert_file.reopen, key_file.reopen)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc):
                problems.append(f"{where}.key_file: {str(key)!r} does not match the certificate")
            else:
                problems.append(
                    f"{where}: cannot load {str(cert)!r} with {str(key)!r}: {_reason(exc)}"
                )
        except OSError as exc:
            problems.append(f"{where}: cannot read {str(cert)!r} or {str(key)!r}: {exc.strerror}")


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc)


def _headers(headers: dict[str, str], problems: list[str]) -> tuple[tuple[str, str], ...]:
    for name, value in headers.items():
        if name not in ALLOWED_HEADERS:
            problems.append(f"http_server_config.headers: header {name!r} cannot be configured")
            continue
        allowed = ALLOWED_HEADERS[name]
        if allowed is not None and value.lower() not in allowed:
            problems.append(
                f"http_server_config.headers: {name} must be one of {', '.join(allowed)}"
            )
    return tuple(headers.items())


def _users(users: dict[str, str], problems: list[str]) -> dict[str, bytes]:
    checked = {}
    for user, hashed in users.items():
        encoded = hashed.encode()
        try:
            # checkpw parses the hash first; a wrong password is the expected outcome here.
            bcrypt.checkpw(b"", encoded)
        except ValueError:
            problems.append(f"basic_auth_users.{user}: not a bcrypt hash")
            continue
        checked[user] = encoded
    return checked


def decoy_hash(users: dict[str, bytes]) -> bytes:
    """A hash of a random password at the users' bcrypt cost (``$2b$NN$...``); b"" without users.

    Checking an unknown user against it takes as long as a wrong password of a known user, so
    timing does not tell which users exist. Hashes of different costs (a user added later at
    a higher cost, say) cannot all be matched by one decoy: it takes the most common cost,
    ties going to the highest, so that the fewest user names stand out by their timing.
    """
    if not users:
        return b""
    # _users has checked every hash, so its cost is the field after the version.
    costs = Counter(int(hashed.split(b"$")[2]) for hashed in users.values())
    cost = max(costs, key=lambda rounds: (costs[rounds], rounds))
    return bcrypt.hashpw(secrets.token_hex(16).encode(), bcrypt.gensalt(rounds=cost))


def _summary(document: WebConfigFile) -> dict[str, Any]:
    """What a reload compares to say what changed (hashes compared by digest only)."""
    tls = document.tls_server_config
    return {
        "TLS settings": None if tls is None else tls.model_dump(),
        "HTTP/2": document.http_server_config.http2,
        "headers": dict(document.http_server_config.headers),
        "basic auth users": {
            user: hashlib.sha256(hashed.encode()).hexdigest()
            for user, hashed in document.basic_auth_users.items()
        },
    }


def describe_change(old: WebConfig, new: WebConfig) -> str:
    parts = [name for name in old.summary if old.summary[name] != new.summary[name]]
    if not parts:
        parts = ["certificate files"]
    return "web config reloaded: " + ", ".join(parts) + " changed"


class LiveWebConfig:
    """The current web config, re-read when the files change; the last good one on errors."""

    def __init__(self, path: Path, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._config = load(path)  # WebConfigError at start-up stops the exporter
        self._checked_at = monotonic()
        self._rejected: str | None = None
        self._watched = False

    @property
    def tls_on(self) -> bool:
        return self._config.tls is not None

    def current(self) -> WebConfig:
        """The config to apply now; looks at the files first if they are due a look."""
        if self._due():
            self.reload()
        return self._config

    def fresh(self) -> WebConfig | None:
        """The config, unless the files are due a look (then None: call ``current()``).

        For the server's event loop, which must not wait for files or for the bcrypt
        checks of a reload: the request that finds the files due goes to a worker thread.
        Never None while ``watch`` runs.
        """
        return None if self._due() else self._config

    def watch(self, stop: threading.Event, period: float = RECHECK_SECONDS) -> None:
        """Look at the files every ``period`` seconds until ``stop`` is set.

        Run on a thread of its own: from then on requests never look (see the module).
        """
        self._watched = True
        try:
            while not stop.wait(period):
                try:
                    self.reload()
                except Exception:  # the last good config stays; the next look tries again
                    log.exception("web config %s: looking at the files failed", self.path)
        finally:
            self._watched = False

    def _due(self) -> bool:
        return not self._watched and self._monotonic() - self._checked_at >= RECHECK_SECONDS

    def tls_context(self) -> ssl.SSLContext:
        """The context for a TLS handshake, as last loaded.

        Handshakes run on the server's event loop, which must not wait for files or for the
        bcrypt checks of a reload: ``watch``, requests on worker threads and SIGHUP do the
        reloading.
        """
        tls = self._config.tls
        assert tls is not None, "TLS is on: a config without it is never accepted"
        return tls

    def reload(self) -> str | None:
        """Re-read the files if their content changed; returns what changed, or None."""
        with self._lock:
            self._checked_at = self._monotonic()
            try:
                document: WebConfigFile | None = parse(self.path)
            except WebConfigError:
                document = None
            files = referenced_files(self.path, document)
            stamp = fingerprint(files)
            if stamp in (self._config.fingerprint, self._rejected):
                return None
            try:
                config = load(self.path)
                if (config.tls is None) != (self._config.tls is None):
                    raise WebConfigError(self.path, ["turning TLS on or off needs a restart"])
            except WebConfigError as exc:
                self._rejected = stamp
                log.error(
                    "web config %s: keeping the last good config: %s",
                    self.path,
                    "; ".join(exc.problems),
                )
                return None
            change = describe_change(self._config, config)
            self._config, self._rejected = config, None
            log.info("%s (%s)", change, self.path)
            return change
