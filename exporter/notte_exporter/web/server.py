"""The HTTP server: hypercorn on asyncio in front, slow requests on a bounded thread pool.

Why hypercorn: connections are read by one asyncio loop, so a connection that sends nothing
or trickles its headers costs a socket, not a thread, and is closed when its request head
has not arrived within ``IDLE_TIMEOUT`` (hypercorn's idle timer, which also closes idle
keep-alive connections, and which arriving bytes do not reset). The routes give a request's
body the same time to arrive whole (``AsgiRoutes``), so a trickle cannot hold a connection
either. Hypercorn's own read timeout is off: it bounded each read, not the body, so a byte
every few seconds kept a request open, and it cost a task and a timer on every read.
TLS handshakes run on the loop too, and the server context hands every handshake the
current ``ssl.SSLContext`` from the web config, so a renewed certificate is served without
a restart. HTTP/1.1 with keep-alive, HTTP/1.0, and HTTP/2 over TLS when the client offers
it (and, as hypercorn does, on a plain connection that starts with HTTP/2's preface);
HTTP/0.9 is refused. (cheroot, the other pure Python candidate, does the TLS handshake
on its single accept thread and hands each new connection straight to a worker, so a
thousand silent connections hold every worker.)

The routes are served as an ASGI app, in two ways (web/messages.py): what can be answered from
memory (``/metrics`` from the published bytes, ``/healthz``, ``/readyz``, a login already
checked) is answered on the loop itself, with no hand-off to a thread and back: that
hand-off cost more than serving the bytes. Everything that may take time (the status page,
a bcrypt check, a look at the web config files, a render of ``/metrics`` for a ``?name[]=``
filter or a new format variant) runs on a pool of ``max_requests`` threads; more wait their
turn in its queue instead of being dropped, and the listen backlog is large enough that the
kernel queues bursts rather than refusing them.

Every listen address gets its own socket, bound when the server is built so that a busy
port fails at start-up; all share the loop and the pool.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Scope,
)

from notte_exporter.web.messages import Handler, Request, Response

log = logging.getLogger(__name__)

TlsContext = Callable[[], ssl.SSLContext]

# Seconds a connection may take to send a request head, and its body; and stay idle between
# requests.
IDLE_TIMEOUT = 5.0
# The kernel caps this at net.core.somaxconn (4096 on current kernels).
LISTEN_BACKLOG = 4096
STOP_GRACE = 3.0
# The routes take no request body; a longer one is refused (400) rather than read on.
MAX_BODY = 64 * 1024


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard limit, as Go programs do at start-up.

    Each connection holds a descriptor until it is closed; the default soft limit of 1024
    lets a burst of idle connections take them all, starving the poll of sockets too.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket for ``host:port`` ("" = every interface, IPv4 and IPv6)."""
    if host == "":
        # One dual-stack socket where the system has IPv6, as Go's ":port" does.
        family = socket.AF_INET6 if socket.has_dualstack_ipv6() else socket.AF_INET
        address: tuple[Any, ...] = ("::" if family == socket.AF_INET6 else "0.0.0.0", port)  # noqa: S104
    else:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = info[0]
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets that
    # say they are TCP, and with Nagle on, a response written in two parts waits ~40 ms
    # for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "" else 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class AsgiRoutes:
    """The ASGI app: answers on the loop what ``handler`` can answer now, else on ``pool``.

    A body not read whole within ``body_timeout`` seconds is answered 408, which closes the
    connection (its request is unfinished).
    """

    def __init__(
        self, handler: Handler, pool: Executor, body_timeout: float = IDLE_TIMEOUT
    ) -> None:
        self._handler = handler
        self._pool = pool
        self._body_timeout = body_timeout

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000, "reason": None})
        if scope["type"] != "http":
            return  # lifespan: nothing to start or stop
        # The first message waits for the first bytes of a body, if the request has one: it
        # is under the deadline too (a GET's arrives at once).
        try:
            async with asyncio.timeout(self._body_timeout):
                status = await _drop_body(receive)
        except TimeoutError:
            status = 408
        if status is not None:
            await send(_start(Response(status, (), b"")))
            await send(_body(b""))
            return
        request = Request.of(
            scope["method"], scope["path"], scope["query_string"].decode("latin-1"),
            scope["headers"],
        )  # fmt: skip
        response = self._handler.answer_now(request)
        if response is None:
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(self._pool, self._handler.answer, request)
        await send(_start(response))
        await send(_body(b"" if request.method == "HEAD" else response.body))


async def _drop_body(receive: ASGIReceiveCallable) -> int | None:
    """Reads (and drops) a body, so that the connection can be kept alive; 400 if too big."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))  # type: ignore[arg-type]
        if size > MAX_BODY:
            return 400
        if not message.get("more_body"):
            return None


def _start(response: Response) -> HTTPResponseStartEvent:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers
    ]
    return {"type": "http.response.start", "status": response.status, "headers": headers}


def _body(body: bytes) -> HTTPResponseBodyEvent:
    return {"type": "http.response.body", "body": body, "more_body": False}


def _quiet_connection_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """One line at debug level for an error that ended one connection; the rest as asyncio does.

    A client can make hypercorn fail: HTTP/2 data sent for a stream it has already answered
    (a body refused for its size, or late) raises a ``KeyError`` inside it. That ends the one
    connection and nothing else, so it is not an error of the exporter's, and any client
    could fill the log with tracebacks at error level. Only the exceptions' types are named:
    their messages may quote what the client sent.
    """
    exception = context.get("exception")
    if exception is None or "transport" not in context:
        loop.default_exception_handler(context)
        return
    log.debug("closed a connection the HTTP library failed on (%s)", _kinds(exception))


def _kinds(exception: BaseException) -> str:
    if isinstance(exception, BaseExceptionGroup):
        return ", ".join(_kinds(inner) for inner in exception.exceptions)
    return type(exception).__name__


class _TlsConfig(Config):
    """Hypercorn's settings, with the TLS context coming from the web config."""

    def __init__(self, tls: TlsContext | None) -> None:
        super().__init__()
        self._tls = tls

    @property
    def ssl_enabled(self) -> bool:
        return self._tls is not None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        if self._tls is None:
            return None
        tls = self._tls
        # The listening context only routes: each handshake is given the current context,
        # so certificates, client-auth settings and the HTTP/2 offer (ALPN, set on each
        # context when it is loaded) read again from disk apply at once.
        router = tls()

        def current(sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
            sslobj.context = tls()

        router.sni_callback = current
        return router


class WebServer:
    """Serves ``handler`` on every address until ``stop()``; TLS when ``tls`` is given."""

    def __init__(
        self,
        handler: Handler,
        addresses: Sequence[tuple[str, int]],
        *,
        max_requests: int = 40,
        tls: TlsContext | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.tls = tls is not None
        self._sockets: list[socket.socket] = []
        try:
            for host, port in addresses:
                self._sockets.append(bind(host, port))
        except OSError:
            self._close_sockets()
            raise
        self._config = _TlsConfig(tls)
        self._config.keep_alive_timeout = idle_timeout
        self._config.read_timeout = None  # see the module's docstring
        self._config.ssl_handshake_timeout = idle_timeout
        self._config.backlog = LISTEN_BACKLOG
        self._config.include_server_header = False
        self._config.graceful_timeout = STOP_GRACE
        self._config.errorlog = logging.getLogger("notte_exporter.http")
        self._config.accesslog = None
        self._pool = ThreadPoolExecutor(max_workers=max_requests, thread_name_prefix="http")
        self._app = ASGIWrapper(AsgiRoutes(handler, self._pool, idle_timeout))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [sock.getsockname()[:2] for sock in self._sockets]

    @property
    def port(self) -> int:
        return int(self._sockets[0].getsockname()[1])

    @property
    def urls(self) -> list[str]:
        scheme = "https" if self.tls else "http"
        urls = []
        for host, port in self.addresses:
            shown = host
            if host in ("0.0.0.0", "::"):  # noqa: S104
                shown = "localhost"
            elif ":" in host:
                shown = f"[{host}]"
            urls.append(f"{scheme}://{shown}:{port}")
        return urls

    @property
    def url(self) -> str:
        return self.urls[0]

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(timeout=10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_default_executor(self._pool)
        loop.set_exception_handler(_quiet_connection_errors)
        self._loop = loop
        self._stopping = asyncio.Event()
        stopping = self._stopping
        sockets = Sockets(
            secure_sockets=self._sockets if self.tls else [],
            insecure_sockets=[] if self.tls else self._sockets,
            quic_sockets=[],
        )
        loop.call_soon(self._ready.set)
        try:
            loop.run_until_complete(
                worker_serve(
                    self._app, self._config, sockets=sockets, shutdown_trigger=stopping.wait
                )
            )
        except Exception:
            log.exception("the HTTP server stopped unexpectedly")
        finally:
            self._ready.set()
            loop.close()

    def stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop has just closed
                loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout=STOP_GRACE + 2)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
