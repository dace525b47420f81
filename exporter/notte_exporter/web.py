"""The WSGI app: /metrics, /healthz, /readyz and a landing page, routed by path.

Serving reads only the state the poll thread published, so a slow or failing API never
slows a scrape. ``/metrics`` serves the bytes rendered when the last poll ended
(``exposition.py`` negotiates the format and gzip with the scraper). The server that runs
this app is ``server.py``; the web config's TLS, authentication and headers wrap it in
``access.py``. HEAD is answered like GET, with the headers only.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable
from typing import Any

from . import __version__
from .exposition import PublishedExposition
from .state import ExporterState

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


def make_app(
    exposition: PublishedExposition,
    state: ExporterState,
    telemetry_path: str = "/metrics",
    redact: Callable[[str], str] = str,
) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = route(environ, start_response)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return []  # Content-Length still says what GET would send
        return body

    def route(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", "method not allowed\n")
        if path == telemetry_path:
            return _metrics(start_response, exposition, environ)
        if path == "/healthz":
            return _plain(start_response, "200 OK", "ok\n")
        if path == "/readyz":
            if state.ready:
                return _plain(start_response, "200 OK", "ready\n")
            return _plain(
                start_response, "503 Service Unavailable", "not ready: no successful poll yet\n"
            )
        if path == "/":
            return _landing(start_response, state, telemetry_path, redact)
        return _plain(start_response, "404 Not Found", "not found\n")

    return app


def _metrics(
    start_response: StartResponse, exposition: PublishedExposition, environ: Environ
) -> list[bytes]:
    reply = exposition.reply(
        environ.get("HTTP_ACCEPT"),
        environ.get("HTTP_ACCEPT_ENCODING"),
        environ.get("QUERY_STRING", ""),
    )
    headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))]
    if reply.content_encoding is not None:
        headers.append(("Content-Encoding", reply.content_encoding))
    start_response("200 OK", headers)
    return [reply.body]


def _plain(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    )
    return [data]


def _landing(
    start_response: StartResponse,
    state: ExporterState,
    telemetry_path: str,
    redact: Callable[[str], str],
) -> list[bytes]:
    last = state.last_poll
    if last is None:
        poll = "no poll has finished yet"
    elif last.ok:
        poll = f"succeeded at {last.finished_at.isoformat()} in {last.duration_seconds:.3f}s"
    else:
        poll = f"failed at {last.finished_at.isoformat()} ({last.reason}): {last.message}"
    snapshot = state.snapshot
    sessions = "unknown" if snapshot is None else str(snapshot.total_active)
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Notte exporter</title></head>
<body>
<h1>Notte exporter</h1>
<p>Version {html.escape(__version__)}</p>
<p>Last poll: {html.escape(poll)}</p>
<p>Live sessions at the last successful poll: {html.escape(sessions)}</p>
<ul>
<li><a href="{html.escape(telemetry_path)}">Metrics</a></li>
<li><a href="/healthz">Health</a></li>
<li><a href="/readyz">Readiness</a></li>
</ul>
</body></html>
"""
    data = redact(page).encode()
    start_response(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data)))]
    )
    return [data]
