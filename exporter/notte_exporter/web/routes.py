"""The routes: /metrics, /healthz, /readyz and the status page at /, answered by path.

Serving reads only the state the poll thread published, so a slow or failing API never
slows a scrape. ``/metrics`` serves the bytes rendered when the last poll ended
(``metrics/exposition.py`` negotiates the format and gzip with the scraper). The server that runs
these routes is ``web/server.py``; the web config's authentication and headers wrap them in
``web/auth.py``. HEAD is answered like GET (the server sends the headers only).

``/healthz`` is liveness: it fails (503, one line saying why) once a loop the exporter cannot
work without has stopped (``polling/state.py``), since only a restart brings it back. A scrape
whose own render fails (the per-process series, or a format or filter not published yet)
answers 500 with one line saying why.

Everything but the status page and the renders ``/metrics`` has not published (a
``?name[]=`` filter, a format not asked for this poll) is answered from memory, so
``answer_now`` gives it on the server's event loop; the status page renders a page from the
state and the others render the published snapshot, so they are left to a worker thread
(``answer``; see web/messages.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from notte_exporter.errors import describe
from notte_exporter.metrics.exposition import PublishedExposition, Reply
from notte_exporter.web.messages import Request, Response
from notte_exporter.web.statuspage import CONTENT_SECURITY_POLICY

log = logging.getLogger(__name__)

_STATUS_PAGE_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


class Health(Protocol):
    """What the probes answer: ``polling.state.ExporterState``, or every account's."""

    @property
    def unhealthy(self) -> str | None:
        """Why the exporter must be restarted, or None."""

    @property
    def unready(self) -> str | None:
        """Why the exporter is not ready to be scraped yet, or None."""


class Routes:
    """The exporter's pages; ``status_page`` renders ``/`` (web/statuspage.py), 404 without it."""

    def __init__(
        self,
        exposition: PublishedExposition,
        state: Health,
        telemetry_path: str = "/metrics",
        redact: Callable[[str], str] = str,
        status_page: Callable[[], str] | None = None,
    ) -> None:
        self._exposition = exposition
        self._state = state
        self._telemetry_path = telemetry_path
        self._redact = redact
        self._status_page = status_page

    def answer_now(self, request: Request) -> Response | None:
        return self._route(request, now=True)

    def answer(self, request: Request) -> Response:
        response = self._route(request, now=False)
        assert response is not None, "every route answers when it may take its time"
        return response

    def _route(self, request: Request, *, now: bool) -> Response | None:
        if request.method not in ("GET", "HEAD"):
            return _plain(405, "method not allowed\n")
        path = request.path
        if path == self._telemetry_path:
            return self._metrics(request, now=now)
        if path == "/healthz":
            unhealthy = self._state.unhealthy
            if unhealthy is None:
                return _plain(200, "ok\n")
            return _plain(503, f"unhealthy: {self._redact(unhealthy)}\n")
        if path == "/readyz":
            unready = self._state.unready
            if unready is None:
                return _plain(200, "ready\n")
            return _plain(503, f"not ready: {self._redact(unready)}\n")
        if path == "/" and self._status_page is not None:
            if now:
                return None
            return _status_page(self._redact(self._status_page()))
        return _plain(404, "not found\n")

    def _metrics(self, request: Request, *, now: bool) -> Response | None:
        accept = request.headers.get("accept")
        encoding = request.headers.get("accept-encoding")
        reply: Reply | None
        try:
            if now:
                reply = self._exposition.reply_now(accept, encoding, request.query)
                if reply is None:
                    return None
            else:
                reply = self._exposition.reply(accept, encoding, request.query)
        except Exception as exc:
            # A scrape renders the per-process series, and a format or filter not published
            # yet. A scrape comes every few seconds and must not log a traceback each time.
            log.debug("rendering /metrics for a scrape failed", exc_info=True)
            return _plain(500, f"cannot render /metrics: {self._redact(describe(exc))}\n")
        headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))]
        if reply.content_encoding is not None:
            headers.append(("Content-Encoding", reply.content_encoding))
        return Response(200, tuple(headers), reply.body)


def _plain(status: int, body: str) -> Response:
    data = body.encode()
    headers = (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data))))
    return Response(status, headers, data)


def _status_page(page: str) -> Response:
    data = page.encode()
    headers = (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(data))),
        *_STATUS_PAGE_HEADERS,
    )
    return Response(200, headers, data)
