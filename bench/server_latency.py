"""Scrape latency through the HTTP server: the new one (hypercorn) next to the old (wsgiref).

Both serve the same routes of the same exporter, polled once against a fleet, in the same
run: the old one is the threaded wsgiref server the exporter used before (HTTP/1.0, a
thread per connection, a listen backlog of 5), rebuilt here as the baseline, with the routes
behind a small WSGI adapter (every request answered on its connection's thread, as before).
The new one is the exporter's own (``server.py``: ASGI on hypercorn, cheap routes answered
on its event loop). Three ways of scraping, each a median over interleaved repeats, and the
ratio new/old:

- ``sequential_new_connection``: one scrape at a time, a new connection each (Prometheus
  with keep-alive off, curl);
- ``sequential_keep_alive``: one client reusing its connection (Prometheus' default; the
  old server speaks HTTP/1.0 and closes it, so it pays a connect each time);
- ``concurrent``: ``concurrency`` scrapes at once, each on its own connection, timed as a
  batch (several Prometheus servers, or a burst).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx

from notte_exporter.exchange import Handler, Request
from notte_exporter.server import WebServer
from notte_exporter.web import Routes

from .fixtures import Fleet, StaticPages, make_exporter
from .timing import interleaved_medians, ratio

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _OldServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _OldHandler(WSGIRequestHandler):
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


def wsgi(handler: Handler) -> WSGIApp:
    """The routes as a WSGI app, for the old server: everything answered on its thread."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = [
            (name[5:].replace("_", "-").encode("latin-1"), str(value).encode("latin-1"))
            for name, value in environ.items()
            if name.startswith("HTTP_")
        ]
        request = Request.of(
            environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", ""),
            headers,
        )  # fmt: skip
        response = handler.answer(request)
        start_response(
            f"{response.status} {HTTPStatus(response.status).phrase}", list(response.headers)
        )
        return [] if request.method == "HEAD" else [response.body]

    return app


@contextmanager
def old_server(app: WSGIApp) -> Iterator[str]:
    """The wsgiref server as the exporter ran it before, on loopback; yields its URL."""
    server = make_server("127.0.0.1", 0, app, server_class=_OldServer, handler_class=_OldHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def new_server(handler: Handler) -> Iterator[str]:
    server = WebServer(handler, [("127.0.0.1", 0)])
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _one_request(url: str) -> Callable[[], None]:
    """One scrape on a connection of its own, over a raw socket: an httpx client per
    request would time the client's set-up (its TLS context) rather than the server."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = f"GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()

    def scrape() -> None:
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(request)
            while sock.recv(65536):
                pass

    return scrape


def _keep_alive(client: httpx.Client, url: str) -> Callable[[], None]:
    def scrape() -> None:
        client.get(url).raise_for_status()

    return scrape


def _concurrent(url: str, pool: ThreadPoolExecutor, concurrency: int) -> Callable[[], None]:
    one = _one_request(url)

    def batch() -> None:
        list(pool.map(lambda _: one(), range(concurrency)))

    return batch


def run(
    fleet: Fleet, pages: StaticPages, repeats: int, inner: int, concurrency: int
) -> dict[str, Any]:
    exporter = make_exporter(fleet.clock, transport=pages.transport())
    status = exporter.poll_once()
    assert status.ok, f"poll failed: {status.message}"
    routes = Routes(exporter.published, exporter.state, exporter.settings.web_telemetry_path)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        with (
            old_server(wsgi(routes)) as old,
            new_server(routes) as new,
            httpx.Client() as old_client,
            httpx.Client() as new_client,
            ThreadPoolExecutor(max_workers=concurrency) as pool,
        ):
            ways: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
                "sequential_new_connection": (_one_request(old), _one_request(new)),
                "sequential_keep_alive": (
                    _keep_alive(old_client, f"{old}/metrics"),
                    _keep_alive(new_client, f"{new}/metrics"),
                ),
                f"concurrent_{concurrency}": (
                    _concurrent(old, pool, concurrency),
                    _concurrent(new, pool, concurrency),
                ),
            }
            for way, (old_fn, new_fn) in ways.items():
                seconds = interleaved_medians({"old": old_fn, "new": new_fn}, repeats, inner)
                rows.append(
                    {
                        "way": way,
                        "old_ms": round(seconds["old"] * 1e3, 3),
                        "new_ms": round(seconds["new"] * 1e3, 3),
                        "new_over_old": ratio(seconds["new"], seconds["old"]),
                    }
                )
    finally:
        exporter.close()
    return {
        "live_sessions": pages.live_sessions,
        "repeats": repeats,
        "inner": inner,
        "concurrency": concurrency,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def table(server: dict[str, Any]) -> str:
    header = ["way", "old ms", "new ms", "new/old"]
    rows = [[r["way"], r["old_ms"], r["new_ms"], r["new_over_old"]] for r in server["rows"]]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    lines = [
        f"Scrape latency through the HTTP server, {server['live_sessions']} live sessions "
        f"(median of {server['repeats']}; old = wsgiref as before, new = hypercorn)"
    ]
    for index, row in enumerate([header, *rows]):
        lines.append(
            "  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True))
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
