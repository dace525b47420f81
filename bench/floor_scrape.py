"""Scrape of /metrics over HTTP against its floor: a static server serving the same bytes.

The exporter is started for real (its HTTP server, with the per-process series a default
deployment serves) after a poll of the fleet; the floor is a plain threaded ``http.server``
answering every request with the very bytes the exporter served. Both are scraped by the same
keep-alive client, alternately, plain and gzipped. Target: ratio <= 1.5.

One more candidate, with no target: the daemon's own server (``server.WebServer``, same
settings) answering those bytes as a constant. The exporter against it is the share of a
scrape that is the exporter's own work rather than its HTTP library's (issue 11 asks which
of the two ratios the scrape target should be).
"""

from __future__ import annotations

import gzip
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from notte_exporter.exchange import Request, Response
from notte_exporter.server import WebServer

from .fixtures import StaticPages, make_exporter
from .timing import interleaved_medians, ratio

TARGET = 1.5


def _static_server(body: bytes, content_type: str) -> ThreadingHTTPServer:
    zipped = gzip.compress(body)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            data, encoding = body, None
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                data, encoding = zipped, "gzip"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class ConstantBytes:
    """A ``server.WebServer`` handler answering every request with the same bytes, on the loop
    (gzipped when the request accepts it, as the static server does)."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self._plain = _response(body, content_type, None)
        self._gzip = _response(gzip.compress(body), content_type, "gzip")

    def answer_now(self, request: Request) -> Response:
        accepted = request.headers.get("accept-encoding") or ""
        return self._gzip if "gzip" in accepted else self._plain

    def answer(self, request: Request) -> Response:
        return self.answer_now(request)


def _response(body: bytes, content_type: str, encoding: str | None) -> Response:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
    return Response(200, tuple(headers), body)


def run(pages: StaticPages, clock: Any, repeats: int, inner: int) -> dict[str, Any]:
    exporter = make_exporter(clock, transport=pages.transport(), process_metrics=True)
    url = exporter.start()
    try:
        if not exporter.state.wait_for_polls(1, timeout=120):
            raise RuntimeError("the exporter's first poll did not finish")
        with httpx.Client(timeout=10) as client:
            served = client.get(url)
            content_type = served.headers["content-type"]
            static = _static_server(served.content, content_type)
            constant = WebServer(ConstantBytes(served.content, content_type), [("127.0.0.1", 0)])
            constant.start()
            urls = {
                "exporter": url,
                "floor": f"http://127.0.0.1:{static.server_address[1]}/metrics",
                "server": f"{constant.url}/metrics",
            }
            try:
                rows = []
                for encoding in ("identity", "gzip"):
                    headers = {"Accept-Encoding": encoding}
                    for target in urls.values():  # warm every connection
                        client.get(target, headers=headers)
                    medians = interleaved_medians(
                        {name: partial(client.get, u, headers=headers) for name, u in urls.items()},
                        repeats,
                        inner,
                    )
                    rows.append(
                        {
                            "encoding": encoding,
                            "exporter_ms": round(medians["exporter"] * 1e3, 3),
                            "floor_ms": round(medians["floor"] * 1e3, 3),
                            "ratio": ratio(medians["exporter"], medians["floor"]),
                            "target": TARGET,
                            "server_ms": round(medians["server"] * 1e3, 3),
                            "ratio_to_server": ratio(medians["exporter"], medians["server"]),
                        }
                    )
            finally:
                constant.stop()
                static.shutdown()
                static.server_close()
    finally:
        exporter.stop()
    return {"bytes": len(served.content), "sessions": pages.live_sessions, "rows": rows,
            "measured_at": time.time()}  # fmt: skip
