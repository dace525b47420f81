"""The WSGI app: /metrics, /healthz, /readyz and the status page at /, routed by path.

Serving reads only the state the poll thread published, so a slow or failing API never
slows a scrape. ``/metrics`` serves the bytes rendered when the last poll ended
(``exposition.py`` negotiates the format and gzip with the scraper). The server that runs
this app is ``server.py``; the web config's TLS, authentication and headers wrap it in
``access.py``. HEAD is answered like GET, with the headers only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from .exposition import PublishedExposition
from .state import ExporterState
from .statuspage import CONTENT_SECURITY_POLICY

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


def make_app(
    exposition: PublishedExposition,
    state: ExporterState,
    telemetry_path: str = "/metrics",
    redact: Callable[[str], str] = str,
    status_page: Callable[[], str] | None = None,
) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    """The app; ``status_page`` renders ``/`` (statuspage.py), which is 404 without it."""

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
        if path == "/" and status_page is not None:
            return _status_page(start_response, redact(status_page()))
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


def _status_page(start_response: StartResponse, page: str) -> list[bytes]:
    data = page.encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(data))),
            ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-store"),
        ],
    )
    return [data]
