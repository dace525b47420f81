"""The guards of ``make bench``: each target against its floor, measured in the same run.

* Scrape of ``/metrics`` over HTTP, plain and gzip: the daemon's own server
  (``Exporter.start()``, per-process series on, after one poll of the fleet) against a plain
  threaded ``http.server`` answering with the very bytes the exporter served, both scraped
  alternately by one keep-alive client. Target: at most ``SCRAPE_TARGET`` times the floor.
* Poll CPU (``time.process_time``, every thread of this process) of ``poll_once()`` and one
  scrape as Prometheus makes it (``fixtures.poll_interval``): everything the daemon does per
  poll, paging, validation, lifecycle, snapshot and rendering what the scrape reads, through
  ``httpx.MockTransport`` and over loopback HTTP from the static page server
  (``processes.PageServer``), against ``json.loads`` of the same page bytes.
  Targets: ``POLL_CPU_TARGETS``.
* Poll wall time at the default ``--notte.concurrency``, the page server holding each answer
  ``rtt`` seconds, after a first poll has taught the exporter the page count; the floor asks
  for every one of the same requests at once, one thread each. Target: ``WALL_TARGET_S``.
* Resident memory of a fresh exporter after a few polls (``processes.resident_memory``).
  Target: ``RSS_TARGET_MB``.

Every exporter figure is interleaved with its floor, so a neighbour's load slows both.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import httpx

from notte_exporter.daemon import Exporter
from notte_exporter.simulator import ManualClock

from .fixtures import PAGE_SIZE, Fleet, StaticPages, decode_each, make_exporter, poll_interval
from .processes import PageServer, resident_memory
from .timing import cpu_once, interleaved_medians, ratio

SCRAPE_TARGET = 2.5
POLL_CPU_TARGETS = {"mock": 2.0, "loopback": 4.0}
WALL_TARGET_S = 1.5
RSS_TARGET_MB = 60.0


def static_server(plain: bytes, zipped: bytes, content_type: str) -> ThreadingHTTPServer:
    """A threaded ``http.server`` answering every GET with these bytes (``zipped`` if asked)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            gzipped = "gzip" in (self.headers.get("Accept-Encoding") or "")
            data = zipped if gzipped else plain
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if gzipped:
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def served_bytes(client: httpx.Client, url: str) -> tuple[bytes, bytes, str]:
    """The body ``url`` serves, plain and as gzipped on the wire, and its content type."""
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        zipped = b"".join(response.iter_raw())
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    return plain.content, zipped, plain.headers["content-type"]


@dataclass(frozen=True)
class Served:
    """An exporter after its first poll, its bytes, and a static server of the same bytes."""

    exporter: Exporter
    url: str
    client: httpx.Client
    plain: bytes
    zipped: bytes
    content_type: str
    floor: str  # the static server's /metrics


@contextmanager
def served_beside_its_floor(pages: StaticPages, clock: ManualClock) -> Iterator[Served]:
    """The exporter serving ``pages``' account, and its floor, until the block ends."""
    exporter = make_exporter(clock, transport=pages.transport(), process_metrics=True)
    url = exporter.start()
    try:
        if not exporter.state.wait_for_polls(1, timeout=120):
            raise RuntimeError("the exporter's first poll did not finish")
        with httpx.Client(timeout=10) as client:
            plain, zipped, content_type = served_bytes(client, url)
            static = static_server(plain, zipped, content_type)
            floor = f"http://127.0.0.1:{static.server_address[1]}/metrics"
            try:
                yield Served(exporter, url, client, plain, zipped, content_type, floor)
            finally:
                static.shutdown()
                static.server_close()
    finally:
        exporter.stop()


def scrape(pages: StaticPages, clock: ManualClock, repeats: int, inner: int) -> dict[str, Any]:
    rows = []
    with served_beside_its_floor(pages, clock) as served:
        for encoding in ("identity", "gzip"):
            get = partial(served.client.get, headers={"Accept-Encoding": encoding})
            medians = interleaved_medians(
                {"exporter": partial(get, served.url), "floor": partial(get, served.floor)},
                repeats,
                inner,
            )
            rows.append(
                {
                    "encoding": encoding,
                    "exporter_ms": round(medians["exporter"] * 1e3, 3),
                    "floor_ms": round(medians["floor"] * 1e3, 3),
                    "ratio": ratio(medians["exporter"], medians["floor"]),
                    "target": SCRAPE_TARGET,
                }
            )
    return {"bytes": len(served.plain), "gzip_bytes": len(served.zipped), "rows": rows}


def poll_cpu(pages: StaticPages, clock: ManualClock, repeats: int) -> dict[str, Any]:
    bodies = [body for _, body in sorted(pages.pages.items())]
    floor = decode_each(bodies)
    mock = make_exporter(clock, transport=pages.transport())
    with PageServer(pages.pages) as url:
        loopback = make_exporter(clock, api_url=url)
        # Each polls first: connections, the expected page count, the formats in use.
        polls = {"mock": poll_interval(mock), "loopback": poll_interval(loopback)}
        samples: dict[str, list[float]] = {"floor": [], "mock": [], "loopback": []}
        for _ in range(repeats):
            for name, poll in polls.items():
                samples["floor"].append(cpu_once(floor))
                samples[name].append(cpu_once(poll))
        loopback.close()
    mock.close()
    cpu = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "requests": len(bodies),
        "floor_ms": round(cpu["floor"] * 1e3, 2),
        "rows": [
            {
                "transport": name,
                "poll_cpu_ms": round(cpu[name] * 1e3, 2),
                "ratio": ratio(cpu[name], cpu["floor"]),
                "target": target,
            }
            for name, target in POLL_CPU_TARGETS.items()
        ],
    }


def poll_wall(pages: StaticPages, clock: ManualClock, repeats: int, rtt: float) -> dict[str, Any]:
    paths = [
        "/sessions?"
        + urlencode({"page": page, "page_size": PAGE_SIZE, "only_active": str(active).lower()})
        for active, page in sorted(pages.pages)
    ]
    with PageServer(pages.pages, rtt) as url:
        exporter = make_exporter(clock, api_url=url)
        limits = httpx.Limits(max_connections=None)
        with (
            httpx.Client(base_url=url, timeout=60, limits=limits) as client,
            ThreadPoolExecutor(len(paths)) as pool,
        ):

            def all_at_once() -> None:
                for response in pool.map(client.get, paths):
                    response.raise_for_status()

            def poll() -> None:
                if not exporter.poll_once().ok:
                    raise RuntimeError("a benchmark poll failed")

            all_at_once()  # warm up: one connection per request
            poll()
            seconds = interleaved_medians({"poll": poll, "floor": all_at_once}, repeats)
        exporter.close()
    return {
        "requests": len(paths),
        "rtt_ms": round(rtt * 1e3, 1),
        "concurrency": exporter.settings.notte_concurrency,
        "poll_s": round(seconds["poll"], 3),
        "floor_s": round(seconds["floor"], 3),
        "ratio": ratio(seconds["poll"], seconds["floor"]),
        "target_s": WALL_TARGET_S,
    }


def rss(pages: StaticPages) -> dict[str, Any]:
    result = resident_memory(pages.pages)
    return {
        "sessions": result["sessions"],
        "rss_mb": round(result["rss_kib"] / 1024, 1),
        "peak_mb": round(result["peak_kib"] / 1024, 1),
        "target_mb": RSS_TARGET_MB,
    }


def run(fleet: Fleet, sessions: int, repeats: int, scrape_inner: int, rtt: float) -> dict[str, Any]:
    fleet.grow_to(sessions)
    pages = fleet.snapshot_pages()
    return {
        "sessions": sessions,
        "measured_at": time.time(),
        "scrape": scrape(pages, fleet.clock, repeats, scrape_inner),
        "poll_cpu": poll_cpu(pages, fleet.clock, repeats),
        "poll_wall": poll_wall(pages, fleet.clock, repeats, rtt),
        "rss": rss(pages),
    }


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def missed(floors: dict[str, Any]) -> list[str]:
    """The measurements of ``table`` whose target was missed."""
    return [str(row[0]) for row in table(floors)[2] if row[-1] != "met"]


def table(floors: dict[str, Any]) -> tuple[str, list[str], list[list[object]]]:
    rows: list[list[object]] = []
    for row in floors["scrape"]["rows"]:
        target = row["target"]
        rows.append([
            f"scrape /metrics ({row['encoding']})", f"{row['exporter_ms']} ms",
            f"{row['floor_ms']} ms static http.server", row["ratio"], f"<= {target}x",
            verdict(row["ratio"], target),
        ])  # fmt: skip
    cpu = floors["poll_cpu"]
    for row in cpu["rows"]:
        target = row["target"]
        rows.append([
            f"poll CPU ({row['transport']})", f"{row['poll_cpu_ms']} ms",
            f"{cpu['floor_ms']} ms json.loads", row["ratio"], f"<= {target}x",
            verdict(row["ratio"], target),
        ])  # fmt: skip
    wall = floors["poll_wall"]
    rows.append([
        f"poll wall ({wall['rtt_ms']} ms RTT, concurrency {wall['concurrency']})",
        f"{wall['poll_s']} s", f"{wall['floor_s']} s all at once", wall["ratio"],
        f"<= {wall['target_s']} s", verdict(wall["poll_s"], wall["target_s"]),
    ])  # fmt: skip
    memory = floors["rss"]
    rows.append([
        "resident memory (fresh process)", f"{memory['rss_mb']} MB",
        f"peak {memory['peak_mb']} MB", None, f"<= {memory['target_mb']} MB",
        verdict(memory["rss_mb"], memory["target_mb"]),
    ])  # fmt: skip
    return (
        f"Targets against their floors, {floors['sessions']} live sessions (medians, "
        "interleaved in this run)",
        ["measurement", "exporter", "floor", "ratio", "target", "verdict"],
        rows,
    )
