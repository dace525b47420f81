"""Who may read what: basic auth from the web config, and its extra response headers.

Every path needs credentials when ``basic_auth_users`` is set, ``/metrics`` and ``/``
included, except ``/healthz`` and ``/readyz``: they reveal nothing and Kubernetes probes
cannot send credentials (over TLS they are still served over TLS, as everything is).

Passwords are checked with bcrypt, which is slow on purpose. So that a scrape every second
does not pay for a bcrypt every time, a check that succeeded is remembered under an HMAC of
(user, hash, password) keyed with a secret made at start-up: the cache never holds a
password, or anything that could be tested against one without that key. Failures are not
cached, so guessing stays as slow as bcrypt makes it. An unknown user costs a bcrypt too,
against a hash made at start-up, so that timing does not tell which users exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterable
from typing import Any

import bcrypt

from .webconfig import LiveWebConfig

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
REALM = "notte-exporter"
CACHE_SIZE = 256


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes, with a safe cache."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, None] = {}
        self._lock = threading.Lock()
        self._decoy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt())

    def check(self, header: str | None, users: dict[str, bytes]) -> bool:
        credentials = _credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        hashed = users.get(user)
        if hashed is None:
            bcrypt.checkpw(password, self._decoy)  # as slow as a known user
            return False
        token = hmac.new(self._key, b"\0".join([user.encode(), hashed, password]), hashlib.sha256)
        digest = token.digest()
        with self._lock:
            if digest in self._verified:
                return True
        if not bcrypt.checkpw(password, hashed):
            return False
        with self._lock:
            if len(self._verified) >= CACHE_SIZE:
                self._verified.clear()
            self._verified[digest] = None
        return True


def _credentials(header: str | None) -> tuple[str, bytes] | None:
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return user.decode(), password
    except UnicodeDecodeError:
        return None


def guard(app: WSGIApp, web_config: LiveWebConfig) -> WSGIApp:
    """``app`` behind the web config's basic auth, answering with its extra headers."""
    auth = BasicAuth()

    def guarded(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        config = web_config.current()
        extra = list(config.headers)
        replaced = {name.lower() for name, _ in extra}

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # The operator's headers win over the app's own (a stricter or looser CSP, say).
            kept = [(name, value) for name, value in headers if name.lower() not in replaced]
            return start_response(status, kept + extra, exc_info)

        path = environ.get("PATH_INFO", "/")
        if (
            config.users
            and path not in OPEN_PATHS
            and not auth.check(environ.get("HTTP_AUTHORIZATION"), config.users)
        ):
            body = b"unauthorized\n"
            start(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
        return app(environ, start)

    return guarded
