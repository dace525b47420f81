"""Who may read what: basic auth from the web config, and its extra response headers.

Every path needs credentials when ``basic_auth_users`` is set, ``/metrics`` and ``/``
included, except ``/healthz`` and ``/readyz``: they reveal nothing and Kubernetes probes
cannot send credentials (over TLS they are still served over TLS, as everything is).

Passwords are checked with bcrypt, which is slow on purpose. So that a scrape every second
does not pay for a bcrypt every time, a check that succeeded is remembered under an HMAC of
(user, hash, password) keyed with a secret made at start-up: the cache never holds a
password, or anything that could be tested against one without that key. Failures are not
cached, so guessing stays as slow as bcrypt makes it. An unknown user costs a bcrypt too,
against the web config's decoy, a hash at the users' own cost (web/config.py), so that
timing does not tell which users exist. As with Go's bcrypt, which exporter-toolkit uses,
only a password's first 72 bytes count.

One bcrypt runs at a time, as in Prometheus' exporter-toolkit: a flood of logins to check
(wrong ones, or new ones) then takes at most one core, whatever the number of worker
threads, and leaves the rest to the poll and to the scrapes whose logins are remembered,
which never wait for it: the cache is looked at before anything else. At most
``LOGIN_QUEUE`` logins wait for a bcrypt (the one running included), and any more are
refused at once with 503 and ``Retry-After``: a login let in waits for at most
``LOGIN_QUEUE`` checks, its own included, and a flood holds no more worker threads than that.

A bcrypt check never runs on the server's event loop (it would stall every connection while
it runs): on the loop (``answer_now``) only a login found in the cache is let through, a
request without usable credentials is refused, a login to check finding the queue full is
refused, and everything else (a login to check, a web config due a look at its files) goes
to a worker thread (``answer``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import bcrypt

from notte_exporter.web.config import LiveWebConfig, WebConfig
from notte_exporter.web.messages import Handler, Request, Response

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
REALM = "notte-exporter"
CACHE_SIZE = 256
# The last login let in waits for this many bcrypt checks, its own included: at the highest
# cost the README recommends, that stays well inside Prometheus' default scrape timeout of
# 10 s, with room for a busy CPU (README, "Securing the endpoint").
LOGIN_QUEUE = 8
# bcrypt reads no further (Go's bcrypt ignores the rest; Python's refuses it).
BCRYPT_MAX_PASSWORD = 72


class LoginQueueFullError(Exception):
    """``LOGIN_QUEUE`` logins already wait for a bcrypt: refuse this one now."""


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes, with a safe cache."""

    def __init__(self, queue: int = LOGIN_QUEUE) -> None:
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, None] = {}
        self._lock = threading.Lock()
        self._queue = queue
        # A ticket queue rather than a lock: a lock lets a late login overtake those already
        # waiting, so none could be promised a wait of at most ``queue`` checks.
        self._turns = threading.Condition()
        self._queued = 0  # logins holding a place, the one under bcrypt included
        self._next_ticket = 0
        self._serving = 0  # the ticket whose bcrypt runs now

    def check(self, header: str | None, config: WebConfig) -> bool:
        """Whether the header holds a known login; may cost a bcrypt.

        Raises LoginQueueFullError, without a bcrypt, when the login would need one and
        ``queue`` logins already wait for theirs.
        """
        login = self._login(header, config.users)
        if login is None:
            return False
        password, hashed, digest = login
        if hashed is not None and self._remembered(digest):
            return True
        with self._turn():
            # An unknown user is checked against the decoy, as slow as a known user.
            matched = bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], hashed or config.decoy)
        if hashed is None or not matched:
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

    @property
    def queued(self) -> int:
        """Logins waiting for a bcrypt, the one running included."""
        with self._turns:
            return self._queued

    @property
    def queue_full(self) -> bool:
        """Whether a login to check now would be refused (``check`` raises)."""
        return self.queued >= self._queue

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """One bcrypt at a time, in the order the logins came; refused when the queue is full."""
        with self._turns:
            if self._queued >= self._queue:
                raise LoginQueueFullError
            self._queued += 1
            ticket, self._next_ticket = self._next_ticket, self._next_ticket + 1
            self._turns.wait_for(lambda: self._serving == ticket)
        try:
            yield
        finally:
            with self._turns:
                self._queued -= 1
                self._serving += 1
                self._turns.notify_all()

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

    def __init__(
        self, handler: Handler, web_config: LiveWebConfig, auth: BasicAuth | None = None
    ) -> None:
        self._handler = handler
        self._web_config = web_config
        self._auth = BasicAuth() if auth is None else auth

    def answer_now(self, request: Request) -> Response | None:
        config = self._web_config.fresh()
        if config is None:
            return None  # the files are due a look: that reads them, so not on the loop
        if _needs_credentials(config, request):
            verdict = self._auth.check_cached(request.headers.get("authorization"), config)
            if verdict is None:
                # Refused here when it would be on a thread: a flood takes no worker thread.
                return _dressed(config, _BUSY) if self._auth.queue_full else None
            if not verdict:
                return _dressed(config, _UNAUTHORIZED)
        response = self._handler.answer_now(request)
        return None if response is None else _dressed(config, response)

    def answer(self, request: Request) -> Response:
        config = self._web_config.current()
        if _needs_credentials(config, request):
            try:
                allowed = self._auth.check(request.headers.get("authorization"), config)
            except LoginQueueFullError:
                return _dressed(config, _BUSY)
            if not allowed:
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


# 503 rather than 429: the queue is everyone's, so the client refused may have sent nothing
# but this one request. A place frees as soon as one check ends.
_BUSY_BODY = b"too many logins are waiting for a password check: try again in a second\n"
_BUSY = Response(
    503,
    (
        ("Retry-After", "1"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(_BUSY_BODY))),
    ),
    _BUSY_BODY,
)


def _dressed(config: WebConfig, response: Response) -> Response:
    """The response with the operator's headers, which win over the routes' own."""
    extra = config.headers
    if not extra:
        return response
    replaced = {name.lower() for name, _ in extra}
    kept = tuple((name, value) for name, value in response.headers if name.lower() not in replaced)
    return Response(response.status, kept + extra, response.body)
