"""The simulated Notte API over real HTTP on loopback, with auth, rate limits and faults.

Serves `GET /sessions` (and `/sessions/`), `GET /sessions/{session_id}`,
`DELETE /sessions/{session_id}/stop`, `GET /usage` and `GET /health` from a
`SimulatedAccount`, in a background thread. Behaves like the live API
where it is known: Bearer auth with Notte's 401 body, FastAPI-style 422 bodies for bad query
parameters, `X-RateLimit-*` headers and Notte's 429 body. Every request is recorded, and
tests can inject faults per request through `faults`.

Besides the account key (`api_key`), every named key the account issued is accepted, until
it is revoked or rotated out (then 401); `only_current_token=true` lists only the sessions
of the key that asks (the account key's own sessions, for the account key).
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import socket
import ssl
import struct
import sys
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .account import SimulatedAccount
from .faults import Fault, FaultQueue, default_error_body

__all__ = ["RecordedRequest", "SimulatorServer"]

_LIST_PATHS: Final = frozenset({"/sessions", "/sessions/"})
_SESSION_PREFIX: Final = "/sessions/"
_USAGE_PATH: Final = "/usage"
_STOP_SUFFIX: Final = "/stop"
_CLOSE_REASONS: Final = ("manual", "error")
# How often blocked handlers look up from their wait to notice the server stopping.
_WAKE_INTERVAL_S: Final = 0.02
# stop() gives in-flight handlers this long to finish; they are daemon threads regardless.
_STOP_JOIN_S: Final = 5.0
# How often the serving thread looks up to notice stop(), which waits for it; tests, which
# start and stop hundreds of servers, pass a shorter one.
STOP_POLL_INTERVAL: Final = 0.05


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it."""

    method: str
    path: str
    #: Query parameters (the last value of a repeated one).
    query: dict[str, str]
    #: Headers with lower-cased names.
    headers: dict[str, str]
    #: Account clock time of arrival.
    at: datetime
    query_string: str = ""
    #: The named key the request was made with (None: the account key, or no valid key).
    key: str | None = None


class _ListQuery(BaseModel):
    """The query parameters of GET /sessions, validated like FastAPI does."""

    model_config = ConfigDict(extra="ignore")

    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=10, ge=1, le=100)
    only_active: bool = True
    only_current_token: bool = False
    include_system: bool = False


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] | None = None


def _json_response(status: int, obj: object, headers: Mapping[str, str] | None = None) -> _Response:
    return _Response(status, json.dumps(obj, default=str).encode(), headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Site is overloaded" if status == 529 else "Unknown"


def _headers(
    response: _Response, rate_headers: Mapping[str, str], *, extra: int = 0
) -> dict[str, str]:
    """The headers of ``response``; ``extra`` bytes more announced than the body holds."""
    merged = {"Content-Type": response.content_type, **rate_headers, **(response.headers or {})}
    merged["Content-Length"] = str(len(response.body) + extra)
    return merged


def _validation_errors(error: ValidationError) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = []
    for item in error.errors(include_url=False):
        detail: dict[str, Any] = {
            "type": item["type"],
            "loc": ["query", *item["loc"]],
            "msg": item["msg"],
            "input": item.get("input"),
        }
        if "ctx" in item:
            detail["ctx"] = item["ctx"]
        details.append(detail)
    return details


class _HTTPServer(ThreadingHTTPServer):
    """Tracks open connections so stop() can close idle keep-alive ones."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], simulator: SimulatorServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.simulator = simulator
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="notte-simulator-request",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, resets, stop()) are part of the job, not errors.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> list[threading.Thread]:
        """Shut every open connection down (waking idle handlers); return their threads."""
        with self._connections_lock:
            open_connections = list(self._connections.items())
        for connection, _ in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        return [thread for _, thread in open_connections]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind its proxy
    # Headers and body leave in separate writes: with Nagle on, a kept-alive client's
    # delayed ACK adds 40 ms to every response, which the real API does not do.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.simulator._handle(self)

    # Other methods reach the router too, which answers 405 like FastAPI.
    def do_POST(self) -> None:
        self.server.simulator._handle(self)

    def do_PUT(self) -> None:
        self.server.simulator._handle(self)

    def do_PATCH(self) -> None:
        self.server.simulator._handle(self)

    def do_DELETE(self) -> None:
        self.server.simulator._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        # Tests assert on recorded requests; the access log would only add noise.
        return


def _bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _stop_target(path: str) -> str:
    """The session id of a `/sessions/{session_id}/stop` path, else ""."""
    if not (path.startswith(_SESSION_PREFIX) and path.endswith(_STOP_SUFFIX)):
        return ""
    raw = path[len(_SESSION_PREFIX) : -len(_STOP_SUFFIX)]
    return unquote(raw) if raw and "/" not in raw else ""


def _serve_without_signals(httpd: _HTTPServer, poll_interval: float) -> None:
    # Process signals (SIGINT/SIGTERM) must reach the main thread: a signal the kernel hands
    # to a server thread never wakes a main thread blocked in Event.wait(), so a daemon
    # embedding the simulator could miss its shutdown. Request threads inherit this mask.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    httpd.serve_forever(poll_interval=poll_interval)


class SimulatorServer:
    """Serves a `SimulatedAccount` as the Notte API on loopback, in a background thread.

    `api_key=None` accepts any (or no) Authorization header. `rate_limit=None` turns rate
    limiting and its headers off. The rate-limit window runs on the account's clock. With
    `ssl_context` (a server context holding its certificate) it speaks HTTPS, like the API.
    """

    def __init__(
        self,
        account: SimulatedAccount,
        api_key: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int | None = 100,
        rate_window: float = 60.0,
        max_recorded: int = 10_000,
        ssl_context: ssl.SSLContext | None = None,
        stop_poll_interval: float = STOP_POLL_INTERVAL,
    ) -> None:
        if rate_window <= 0:
            raise ValueError("rate_window must be positive")
        self.account = account
        self.api_key = api_key
        self.host = host
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.faults = FaultQueue()
        self.ssl_context = ssl_context
        self._requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._requested_port = port
        self._stop_poll_interval = stop_poll_interval
        self._lock = threading.Lock()
        self._window_start = -math.inf
        self._window_count = 0
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> SimulatorServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("the simulator server is already started")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self._requested_port), self)
        if self.ssl_context is not None:
            # The handshake waits for each connection's own thread: a slow client must not
            # hold the accept loop.
            httpd.socket = self.ssl_context.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._httpd = httpd
        self._thread = threading.Thread(
            target=_serve_without_signals,
            args=(httpd, self._stop_poll_interval),
            name="notte-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hung and keep-alive requests are cut off. Returns within seconds."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        # Wake handlers held by hang/latency faults before waiting for anything.
        self._stopping.set()
        httpd.shutdown()
        handlers = httpd.close_connections()
        httpd.server_close()
        thread.join()
        for handler in handlers:
            handler.join(timeout=_STOP_JOIN_S)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the simulator server is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:40123` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://{host}:{self.port}"

    # -------------------------------------------------------- observation

    @property
    def requests(self) -> list[RecordedRequest]:
        """The recorded requests, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------ handling

    def _handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        query = {
            name: values[-1]
            for name, values in parse_qs(parts.query, keep_blank_values=True).items()
        }
        headers = {name.lower(): value for name, value in handler.headers.items()}
        now = self.account.now()
        key = self._named_key(headers.get("authorization"))
        with self._lock:
            self._requests.append(
                RecordedRequest(handler.command, path, query, headers, now, parts.query, key)
            )
        rate_headers, limited = self._count_request(now)

        fault = self.faults.take(path, key)
        if fault is not None and not self._suffer(handler, fault, rate_headers):
            return
        if self._stopping.is_set():
            self._drop(handler)
            return

        if limited:
            response = _json_response(429, default_error_body(429))
        else:
            response = self._route(handler.command, path, query, headers)
        if fault is not None and fault.kind == "trickle":
            self._trickle(handler, response, rate_headers, fault)
        else:
            self._send(handler, response, rate_headers)

    def _count_request(self, now: datetime) -> tuple[dict[str, str], bool]:
        """Count the request in the current fixed window; return the headers and whether over."""
        if self.rate_limit is None:
            return {}, False
        timestamp = now.timestamp()
        with self._lock:
            if timestamp >= self._window_start + self.rate_window or timestamp < self._window_start:
                self._window_start = math.floor(timestamp / self.rate_window) * self.rate_window
                self._window_count = 0
            self._window_count += 1
            count = self._window_count
            reset = math.ceil(self._window_start + self.rate_window)
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - count)),
            "X-RateLimit-Reset": str(reset),
        }
        return headers, count > self.rate_limit

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> _Response:
        session_id = ""
        if path.startswith(_SESSION_PREFIX):
            session_id = unquote(path[len(_SESSION_PREFIX) :])
        is_item = bool(session_id) and "/" not in session_id
        stop_id = _stop_target(path)
        known = path in ("/health", _USAGE_PATH) or path in _LIST_PATHS or is_item or bool(stop_id)
        if not known:
            return _json_response(404, {"detail": "Not Found"})
        if method != ("DELETE" if stop_id else "GET"):
            return _json_response(405, {"detail": "Method Not Allowed"})
        if path == "/health":
            return _json_response(200, {"status": "ok"})
        authorization = headers.get("authorization")
        if not self._authorized(authorization):
            return _json_response(401, default_error_body(401))
        if stop_id:
            return self._stop_session(stop_id, query)
        if is_item:
            return self._get_session(session_id)
        if path == _USAGE_PATH:
            # `period` is accepted and ignored: the simulator keeps only the current month.
            return _json_response(200, self.account.usage())
        return self._list_sessions(query, self._named_key(authorization))

    def _get_session(self, session_id: str) -> _Response:
        try:
            return _json_response(200, self.account.session(session_id))
        except KeyError:
            return _json_response(404, {"detail": "Session not found"})

    def _stop_session(self, session_id: str, query: dict[str, str]) -> _Response:
        """The SDK's `session_stop`: the stopped session, 404 unknown, 400 already ended."""
        reason = query.get("close_reason", "manual")
        if reason not in _CLOSE_REASONS:
            detail = {
                "type": "enum",
                "loc": ["query", "close_reason"],
                "msg": "Input should be 'manual' or 'error'",
                "input": reason,
            }
            return _json_response(422, {"detail": [detail]})
        try:
            self.account.stop(session_id, close_reason=reason)
            return _json_response(200, self.account.session(session_id))
        except KeyError:
            return _json_response(404, {"detail": "Session not found"})
        except ValueError:
            # The live API's words, which the SDK takes for "done" (status unconfirmed).
            return _json_response(400, {"detail": f"Session {session_id} is already closed"})

    def _list_sessions(self, query: dict[str, str], key: str | None) -> _Response:
        try:
            params = _ListQuery.model_validate(query)
        except ValidationError as error:
            return _json_response(422, {"detail": _validation_errors(error)})
        page = self.account.page(
            params.page,
            params.page_size,
            only_active=params.only_active,
            include_system=params.include_system,
            only_current_token=params.only_current_token,
            key=key,
        )
        return _json_response(200, page)

    def _authorized(self, authorization: str | None) -> bool:
        token = _bearer_token(authorization)
        if token is not None and self.account.key_named_by(token) is not None:
            return True
        if self.api_key is None:
            return token is None or not self.account.is_dead_key(token)
        return token == self.api_key

    def _named_key(self, authorization: str | None) -> str | None:
        token = _bearer_token(authorization)
        return None if token is None else self.account.key_named_by(token)

    def _suffer(self, handler: _Handler, fault: Fault, rate_headers: dict[str, str]) -> bool:
        """Apply a fault; return True when the normal response should still follow."""
        if fault.kind == "latency":
            self._stopping.wait(fault.seconds)
            return True
        if fault.kind == "trickle":
            return True  # the normal answer, sent slowly (_trickle)
        if fault.kind == "hang":
            while not self._stopping.is_set():
                if fault.release is not None and fault.release.wait(_WAKE_INTERVAL_S):
                    return True
                if fault.release is None:
                    self._stopping.wait(_WAKE_INTERVAL_S)
            return False
        if fault.kind == "reset":
            self._drop(handler)
        elif fault.kind == "malformed_json":
            self._send(handler, _Response(200, fault.body), rate_headers)
        elif fault.kind == "truncated":
            self._send(handler, _Response(200, fault.body), rate_headers, truncate=True)
        elif fault.kind == "payload":
            self._send(
                handler, _json_response(fault.status_code, fault.body, fault.headers), rate_headers
            )
        else:
            self._send(handler, self._status_response(fault), rate_headers)
        return False

    @staticmethod
    def _status_response(fault: Fault) -> _Response:
        body = fault.body
        if isinstance(body, bytes):
            return _Response(
                fault.status_code,
                body,
                fault.content_type or "application/octet-stream",
                fault.headers,
            )
        if isinstance(body, str):
            return _Response(
                fault.status_code,
                body.encode(),
                fault.content_type or "text/plain; charset=utf-8",
                fault.headers,
            )
        response = _json_response(fault.status_code, body, fault.headers)
        if fault.content_type is not None:
            response.content_type = fault.content_type
        return response

    @staticmethod
    def _drop(handler: _Handler) -> None:
        """Close the connection abruptly: RST, no response at all."""
        handler.close_connection = True
        connection = handler.connection
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()

    def _trickle(
        self,
        handler: _Handler,
        response: _Response,
        rate_headers: Mapping[str, str],
        fault: Fault,
    ) -> None:
        """Send ``response`` a byte at a time, ``fault.seconds`` apart, in the part it names."""
        lines = [f"HTTP/1.1 {response.status} {_phrase(response.status)}"]
        lines += [f"{name}: {value}" for name, value in _headers(response, rate_headers).items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        quick, slow = (
            (b"", head + response.body) if fault.part == "headers" else (head, response.body)
        )
        handler.close_connection = True
        try:
            handler.wfile.write(quick)
            for index in range(len(slow)):
                if index and self._stopping.wait(fault.seconds):
                    return
                handler.wfile.write(slow[index : index + 1])
        except OSError:
            return  # the client hung up: what a trickle is waiting for

    @staticmethod
    def _send(
        handler: _Handler,
        response: _Response,
        rate_headers: Mapping[str, str],
        *,
        truncate: bool = False,
    ) -> None:
        handler.send_response(response.status, _phrase(response.status))
        merged = _headers(response, rate_headers, extra=1024 if truncate else 0)
        for name, value in merged.items():
            handler.send_header(name, value)
        handler.end_headers()
        try:
            handler.wfile.write(response.body)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True
            return
        if truncate:
            # The announced rest never comes: close so the client sees a short body.
            handler.close_connection = True
