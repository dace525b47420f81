"""Scrape of /metrics over HTTP against its floor: a static server serving the same bytes.

The exporter is started for real (its HTTP server, with the per-process series a default
deployment serves) after a poll of the fleet; the floor is a plain threaded ``http.server``
answering every request with the very bytes the exporter served. Both are scraped by the same
keep-alive client, alternately, plain and gzipped. Target: ratio <= 1.5.
"""

from __future__ import annotations

import gzip
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

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


def run(pages: StaticPages, clock: Any, repeats: int, inner: int) -> dict[str, Any]:
    exporter = make_exporter(clock, transport=pages.transport(), process_metrics=True)
    url = exporter.start()
    try:
        if not exporter.state.wait_for_polls(1, timeout=120):
            raise RuntimeError("the exporter's first poll did not finish")
        with httpx.Client(timeout=10) as client:
            served = client.get(url)
            static = _static_server(served.content, served.headers["content-type"])
            floor_url = f"http://127.0.0.1:{static.server_address[1]}/metrics"
            try:
                rows = []
                for encoding in ("identity", "gzip"):
                    headers = {"Accept-Encoding": encoding}
                    for target in (url, floor_url):  # warm both connections
                        client.get(target, headers=headers)
                    medians = interleaved_medians(
                        {
                            "exporter": partial(client.get, url, headers=headers),
                            "floor": partial(client.get, floor_url, headers=headers),
                        },
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
                        }
                    )
            finally:
                static.shutdown()
                static.server_close()
    finally:
        exporter.stop()
    return {"bytes": len(served.content), "sessions": pages.live_sessions, "rows": rows,
            "measured_at": time.time()}  # fmt: skip
