"""The HTTP server: hypercorn on asyncio in front, the WSGI app on a bounded thread pool.

Why hypercorn: connections are read by one asyncio loop, so a connection that sends nothing
or trickles its headers costs a socket, not a thread, and is closed when its request head
has not arrived within ``IDLE_TIMEOUT`` (the same timer closes idle keep-alive connections).
Only complete requests reach the pool of ``max_requests`` threads; more wait their turn in
its queue instead of being dropped, and the listen backlog is large enough that the kernel
queues bursts rather than refusing them. TLS handshakes run on the loop too, and the server
context hands every handshake the current ``ssl.SSLContext`` from the web config, so a
renewed certificate is served without a restart. HTTP/1.1 with keep-alive, HTTP/1.0, and
HTTP/2 over TLS when the client offers it; HTTP/0.9 is refused. (cheroot, the other pure
Python candidate, does the TLS handshake on its single accept thread and hands each new
connection straight to a worker, so a thousand silent connections hold every worker.)

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
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from hypercorn.app_wrappers import WSGIWrapper
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
TlsContext = Callable[[], ssl.SSLContext]

# Seconds a connection may take to send a request head, and stay idle between requests.
IDLE_TIMEOUT = 5.0
# The kernel caps this at net.core.somaxconn (4096 on current kernels).
LISTEN_BACKLOG = 4096
STOP_GRACE = 3.0


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


def _never_empty(app: WSGIApp) -> WSGIApp:
    """Give at least one (empty) chunk: hypercorn sends the status line with the first one."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        chunks = list(app(environ, start_response))
        return chunks or [b""]

    return wrapped


class _TlsConfig(Config):
    """Hypercorn's settings, with the TLS context coming from the web config."""

    def __init__(self, tls: TlsContext | None, http2: Callable[[], bool]) -> None:
        super().__init__()
        self._tls = tls
        self._http2 = http2

    @property
    def ssl_enabled(self) -> bool:
        return self._tls is not None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        if self._tls is None:
            return None
        tls = self._tls
        http2 = self._http2
        # The listening context only routes: each handshake is given the current context,
        # so certificates and client-auth settings read again from disk apply at once.
        router = tls()
        router.set_alpn_protocols(["h2", "http/1.1"])

        def current(sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
            context = tls()
            context.set_alpn_protocols(["h2", "http/1.1"] if http2() else ["http/1.1"])
            sslobj.context = context

        router.sni_callback = current
        return router


class WebServer:
    """Serves ``app`` on every address until ``stop()``; TLS when ``tls`` is given."""

    def __init__(
        self,
        app: WSGIApp,
        addresses: Sequence[tuple[str, int]],
        *,
        max_requests: int = 40,
        tls: TlsContext | None = None,
        http2: Callable[[], bool] = lambda: True,
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
        self._config = _TlsConfig(tls, http2)
        self._config.keep_alive_timeout = idle_timeout
        self._config.read_timeout = int(max(idle_timeout, 1))
        self._config.ssl_handshake_timeout = idle_timeout
        self._config.backlog = LISTEN_BACKLOG
        self._config.include_server_header = False
        self._config.graceful_timeout = STOP_GRACE
        self._config.errorlog = logging.getLogger("notte_exporter.http")
        self._config.accesslog = None
        self._app = WSGIWrapper(_never_empty(app), max_body_size=64 * 1024)
        self._pool = ThreadPoolExecutor(max_workers=max_requests, thread_name_prefix="http")
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
