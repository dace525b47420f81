"""Who may read what: basic auth from the web config, and its extra response headers.

Every path needs credentials when ``basic_auth_users`` is set, ``/metrics`` and ``/``
included, except ``/healthz`` and ``/readyz``: they reveal nothing and Kubernetes probes
cannot send credentials (over TLS they are still served over TLS, as everything is).

Passwords are checked with bcrypt, which is slow on purpose. So that a scrape every second
does not pay for a bcrypt every time, a check that succeeded is remembered under an HMAC of
(user, hash, password) keyed with a secret made at start-up: the cache never holds a
password, or anything that could be tested against one without that key. Failures are not
cached, so guessing stays as slow as bcrypt makes it. An unknown user costs a bcrypt too,
against the web config's decoy, a hash at the users' own cost (webconfig.py), so that
timing does not tell which users exist.

One bcrypt runs at a time, as in Prometheus' exporter-toolkit: a flood of logins to check
(wrong ones, or new ones) then takes at most one core, whatever the number of worker
threads, and leaves the rest to the poll and to the scrapes whose logins are remembered,
which never wait for it.

A bcrypt check never runs on the server's event loop (it would stall every connection for
the ~100+ ms it takes): on the loop (``answer_now``) only a login found in the cache is let
through, a request without usable credentials is refused, and everything else (a login to
check, a web config due a look at its files) goes to a worker thread (``answer``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading

import bcrypt

from .exchange import Handler, Request, Response
from .webconfig import LiveWebConfig, WebConfig

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
REALM = "notte-exporter"
CACHE_SIZE = 256


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes, with a safe cache."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, None] = {}
        self._lock = threading.Lock()
        self._one_bcrypt = threading.Lock()

    def check(self, header: str | None, config: WebConfig) -> bool:
        """Whether the header holds a known login; may cost a bcrypt."""
        login = self._login(header, config.users)
        if login is None:
            return False
        password, hashed, digest = login
        if hashed is None:
            self._bcrypt(password, config.decoy)  # as slow as a known user
            return False
        if self._remembered(digest):
            return True
        if not self._bcrypt(password, hashed):
            return False
        with self._lock:
            if len(self._verified) >= CACHE_SIZE:
                self._verified.clear()
            self._verified[digest] = None
        return True

    def check_cached(self, header: str | None, config: WebConfig) -> bool | None:
        """``check`` without a bcrypt: None when only a bcrypt could tell (call ``check``)."""
        login = self._login(header, config.users)
        if login is None:
            return False
        _, hashed, digest = login
        if hashed is None:
            return None  # check() pays the decoy bcrypt, so that timing tells nothing
        return True if self._remembered(digest) else None

    def _login(
        self, header: str | None, users: dict[str, bytes]
    ) -> tuple[bytes, bytes | None, bytes] | None:
        """(password, its user's hash or None for an unknown user, cache key), or None."""
        credentials = _credentials(header)
        if credentials is None:
            return None
        user, password = credentials
        hashed = users.get(user)
        return password, hashed, self._digest(user, hashed or b"", password)

    def _bcrypt(self, password: bytes, hashed: bytes) -> bool:
        with self._one_bcrypt:
            return bcrypt.checkpw(password, hashed)

    def _remembered(self, digest: bytes) -> bool:
        with self._lock:
            return digest in self._verified

    def _digest(self, user: str, hashed: bytes, password: bytes) -> bytes:
        message = b"\0".join([user.encode(), hashed, password])
        return hmac.new(self._key, message, hashlib.sha256).digest()


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


class Guard:
    """``handler`` behind the web config's basic auth, answering with its extra headers."""

    def __init__(self, handler: Handler, web_config: LiveWebConfig) -> None:
        self._handler = handler
        self._web_config = web_config
        self._auth = BasicAuth()

    def answer_now(self, request: Request) -> Response | None:
        config = self._web_config.fresh()
        if config is None:
            return None  # the files are due a look: that reads them, so not on the loop
        if _needs_credentials(config, request):
            verdict = self._auth.check_cached(request.headers.get("authorization"), config)
            if verdict is None:
                return None
            if not verdict:
                return _dressed(config, _UNAUTHORIZED)
        response = self._handler.answer_now(request)
        return None if response is None else _dressed(config, response)

    def answer(self, request: Request) -> Response:
        config = self._web_config.current()
        if _needs_credentials(config, request) and not self._auth.check(
            request.headers.get("authorization"), config
        ):
            return _dressed(config, _UNAUTHORIZED)
        return _dressed(config, self._handler.answer(request))


def _needs_credentials(config: WebConfig, request: Request) -> bool:
    return bool(config.users) and request.path not in OPEN_PATHS


_UNAUTHORIZED_BODY = b"unauthorized\n"
_UNAUTHORIZED = Response(
    401,
    (
        ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(_UNAUTHORIZED_BODY))),
    ),
    _UNAUTHORIZED_BODY,
)


def _dressed(config: WebConfig, response: Response) -> Response:
    """The response with the operator's headers, which win over the routes' own."""
    extra = config.headers
    if not extra:
        return response
    replaced = {name.lower() for name, _ in extra}
    kept = tuple((name, value) for name, value in response.headers if name.lower() not in replaced)
    return Response(response.status, kept + extra, response.body)
