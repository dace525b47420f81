"""What the floors run in processes of their own: the API's pages, and a fresh exporter.

``PageServer``: the poll measurements need an API that costs the benchmark's process
nothing: pages rendered once in advance, answered by a plain threaded ``http.server`` in a
child process (so its CPU is not the exporter's), each answer held back ``rtt`` seconds to
stand for the network. A page that was not rendered is the empty last page.

``resident_memory``: the exporter as the daemon builds it (process metrics included), in a
fresh spawned process, polling such a server a few times, then its ``VmRSS`` and ``VmHWM``
(the peak). The benchmark's own process holds every earlier phase's fleet, and this module
imports nothing of the benchmark's fixtures, so the simulator never loads in the process
measured.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

Pages = dict[tuple[bool, int], bytes]


def _empty(page: int) -> bytes:
    return json.dumps({"items": [], "page": page, "page_size": 100, "has_next": False}).encode()


def _serve(pages: Pages, rtt: float, conn: Connection) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real API
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            page = int(query.get("page", ["1"])[0])
            body = pages.get((query.get("only_active", ["true"])[0] == "true", page))
            if body is None:
                body = _empty(page)
            if rtt > 0:
                time.sleep(rtt)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send(server.server_address[1])
    conn.recv()  # until told to stop
    server.shutdown()


class PageServer:
    """``with PageServer(pages, rtt) as url:`` serves ``pages`` at ``url`` from a child."""

    def __init__(self, pages: Pages, rtt: float = 0.0) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(pages, rtt, child), daemon=True)

    def __enter__(self) -> str:
        self._process.start()
        port = self._conn.recv()
        return f"http://127.0.0.1:{port}"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()


POLLS = 3


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _exporter_child(url: str, conn: Connection) -> None:
    from pydantic import SecretStr  # noqa: PLC0415 - imported in the child only

    from notte_exporter.daemon import Exporter  # noqa: PLC0415
    from notte_exporter.keys import ApiKey  # noqa: PLC0415
    from notte_exporter.settings import Settings  # noqa: PLC0415

    settings = Settings(
        notte_api_url=url,
        notte_api_key=SecretStr("bench-key"),
        notte_max_pages=1000,
        poll_timeout=600,
        collector_usage=False,
    )
    exporter = Exporter(settings, ApiKey(SecretStr("bench-key")))
    statuses = [exporter.poll_once() for _ in range(POLLS)]
    exporter.exposition()
    gc.collect()
    conn.send(
        {
            "ok": all(status.ok for status in statuses),
            "sessions": statuses[-1].sessions,
            "rss_kib": _status_kib("VmRSS"),
            "peak_kib": _status_kib("VmHWM"),
        }
    )


def resident_memory(pages: Pages) -> dict[str, Any]:
    """VmRSS and VmHWM (KiB) of a fresh exporter after ``POLLS`` polls of ``pages``."""
    context = multiprocessing.get_context("spawn")
    with PageServer(pages) as url:
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_exporter_child, args=(url, send))
        child.start()
        result: dict[str, Any] = receive.recv()
        child.join(timeout=60)
    if not result["ok"]:
        raise RuntimeError("a benchmark poll failed in the memory child")
    return result
