"""Where the guarded costs go, part by part: ``python -m bench --breakdown``.

Not guards: these say what a guard's figure is made of, for when one moves.

* Poll CPU, part by part, each alone on the floors' fleet against the same ``json.loads``
  floor: ``parse`` (every page read as a poll reads it), a bare httpx client fetching the
  same requests (mock transport, loopback), ``track`` and ``summarise`` (fed page by page),
  and ``publish`` (after a poll that did not publish and a scrape as Prometheus makes it,
  as after every poll).
* A scrape over HTTP, layer by layer, interleaved: the static floor, the daemon's server
  answering the same bytes as a constant, ``/metrics`` without and with the per-process
  series, and ``/healthz``.
* A scrape's own work, in CPU: rendering the per-process series, and compressing the body
  at each gzip level, with the size each gives (why ``exposition.GZIP_LEVEL`` is what it is).
* Resident memory, layer by layer: a fresh interpreter imports the libraries the daemon
  uses one at a time, builds the exporter and serves, reading ``VmRSS`` after each step.
"""

from __future__ import annotations

import compileall
import gzip
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import generate_latest

from notte_exporter.api.models import in_api_utc, parse_live_page
from notte_exporter.metrics.exposition import PublishedExposition
from notte_exporter.simulator import ManualClock
from notte_exporter.web.messages import Request, Response
from notte_exporter.web.routes import Routes
from notte_exporter.web.server import WebServer

from .fixtures import (
    OFFLINE_URL,
    PAGE_SIZE,
    PROMETHEUS_ACCEPT,
    Fleet,
    StaticPages,
    decode_each,
    make_exporter,
    parse_each,
    poll_interval,
    summarise_pages,
)
from .floors import served_beside_its_floor
from .processes import PageServer
from .timing import cpu_once, interleaved_medians, ratio, time_once

Table = tuple[str, list[str], list[list[object]]]


def poll_parts(pages: StaticPages, clock: ManualClock, repeats: int) -> dict[str, Any]:
    keys = sorted(pages.pages)
    live = [parse_live_page(pages.pages[key]).sessions for key in keys if key[0]]
    now = in_api_utc(clock.now())
    exporter = make_exporter(clock, transport=pages.transport())
    poll_interval(exporter)  # to the steady state: see there
    tracker = exporter.tracker

    def fetch_all(client: httpx.Client, base: str) -> Callable[[], None]:
        urls = [
            httpx.URL(
                f"{base}/sessions",
                params={"page": page, "page_size": PAGE_SIZE, "only_active": str(active).lower()},
            )
            for active, page in keys
        ]

        def fetch() -> None:
            for url in urls:
                client.get(url).read()

        return fetch

    def track() -> None:
        listing = tracker.begin_listing(now)
        for page in live:
            listing.add(page)
        listing.complete()

    floor = decode_each([pages.pages[key] for key in keys])
    with (
        PageServer(pages.pages) as url,
        httpx.Client(transport=pages.transport()) as mock_client,
        httpx.Client() as loopback_client,
    ):
        parts: dict[str, Callable[[], object]] = {
            "parse": parse_each(
                [pages.pages[key] for key in keys if key[0]],
                [pages.pages[key] for key in keys if not key[0]],
            ),
            "httpx (mock)": fetch_all(mock_client, OFFLINE_URL),
            "httpx (loopback)": fetch_all(loopback_client, url),
            "track": track,
            "summarise": partial(summarise_pages, live, now),
            "publish": exporter.published.publish,
        }
        for part in parts.values():  # warm up: connections, caches
            part()
        samples: dict[str, list[float]] = {"floor": [], **{name: [] for name in parts}}
        for _ in range(repeats):
            for name, part in parts.items():
                samples["floor"].append(cpu_once(floor))
                if name == "publish":
                    # What a poll changed, in the format a scrape asked for since the last.
                    exporter.poller.poll()
                    exporter.published.reply(PROMETHEUS_ACCEPT)
                samples[name].append(cpu_once(part))
    exporter.close()
    cpu = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "floor_ms": round(cpu["floor"] * 1e3, 2),
        "rows": [
            {"part": n, "cpu_ms": round(cpu[n] * 1e3, 2), "ratio": ratio(cpu[n], cpu["floor"])}
            for n in parts
        ],
    }


class ConstantBytes:
    """A ``server.WebServer`` handler answering every request with the same bytes, on the loop."""

    def __init__(self, plain: bytes, zipped: bytes, content_type: str) -> None:
        self._plain = _response(plain, content_type, None)
        self._gzip = _response(zipped, content_type, "gzip")

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


def scrape_layers(
    pages: StaticPages, clock: ManualClock, repeats: int, inner: int
) -> dict[str, Any]:
    with served_beside_its_floor(pages, clock) as served:
        exporter, url = served.exporter, served.url
        routes = Routes(PublishedExposition(exporter.registry), exporter.state)
        servers = [
            WebServer(
                ConstantBytes(served.plain, served.zipped, served.content_type),
                [("127.0.0.1", 0)],
            ),
            WebServer(routes, [("127.0.0.1", 0)]),
        ]
        try:
            for server in servers:
                server.start()
            urls = {
                "floor": served.floor,
                "server, constant bytes": f"{servers[0].url}/metrics",
                "/metrics, no per-process series": f"{servers[1].url}/metrics",
                "/metrics": url,
                "/healthz": url.removesuffix(exporter.settings.web_telemetry_path) + "/healthz",
            }
            rows = []
            for encoding in ("identity", "gzip"):
                get = partial(served.client.get, headers={"Accept-Encoding": encoding})
                medians = interleaved_medians(
                    {name: partial(get, u) for name, u in urls.items()}, repeats, inner
                )
                rows += [
                    {
                        "encoding": encoding,
                        "layer": name,
                        "ms": round(seconds * 1e3, 3),
                        "ratio": ratio(seconds, medians["floor"]),
                    }
                    for name, seconds in medians.items()
                ]  # fmt: skip
        finally:
            for server in servers:
                server.stop()
        process = exporter.process_registry
        assert process is not None
        work = [_work("render the per-process series", generate_latest, process)]
        work += [
            _work(f"gzip.compress, level {n}", gzip.compress, served.plain, n) for n in (1, 6, 9)
        ]
    return {"bytes": len(served.plain), "rows": rows, "scrape_work": work}


def _work(name: str, function: Callable[..., bytes], *args: Any) -> dict[str, Any]:
    """Microseconds of CPU per call of ``function(*args)``, and the size of what it makes."""
    seconds = time_once(partial(function, *args), inner=200, clock=time.process_time)
    return {"work": name, "us": round(seconds * 1e6, 1), "bytes": len(function(*args))}


# Builds and serves as the daemon does, reading VmRSS after each step; prints them as JSON.
_RSS_CHILD = r"""
import gc, importlib, json, sys

def rss_kib():
    gc.collect()
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

steps = [rss_kib()]
for names in json.loads(sys.argv[1]):
    for name in names:
        importlib.import_module(name)
    steps.append(rss_kib())
from notte_exporter.settings import load_settings
from notte_exporter.daemon import Exporter
from notte_exporter.keys import ApiKey
# A closed loopback port: polls fail at once and nothing leaves the machine.
settings = load_settings({"web_listen_address": ["127.0.0.1:0"],
                          "notte_api_url": "http://127.0.0.1:1"})
exporter = Exporter(settings, ApiKey(settings.notte_api_key))
steps.append(rss_kib())
exporter.start()
import urllib.request
for path in ("/metrics", "/metrics", "/"):
    urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}{path}").read()
steps.append(rss_kib())
exporter.stop()
print(json.dumps(steps))
"""
# Each layer adds what it imports beyond the layers before it: the order matters.
RSS_LAYERS: dict[str, list[str]] = {
    "OpenSSL, via hashlib and ssl": ["hashlib", "ssl"],
    "asyncio, email, http, logging": ["asyncio", "email.message", "http.client", "logging"],
    # pydantic's package imports its models lazily: pydantic.main brings them.
    "pydantic (+pydantic_core)": ["pydantic", "pydantic.main"],
    "pydantic_settings": ["pydantic_settings"],
    "httpx (+httpcore, h11, anyio, certifi)": ["httpx"],
    "tenacity": ["tenacity"],
    "prometheus_client": ["prometheus_client"],
    "hypercorn (+h2, wsproto)": ["hypercorn", "hypercorn.asyncio", "hypercorn.config"],
    "notte_exporter's own modules (+what is left)": ["notte_exporter.cli"],
}
RSS_STEPS = [
    "the interpreter (with site and json)",
    *RSS_LAYERS,
    "build the Exporter",
    "serve: 2 scrapes of /metrics, 1 of /",
]


def rss_layers(runs: int) -> dict[str, Any]:
    # Bytecode written first, as pip writes it: compiling at import leaves garbage behind.
    spec = importlib.util.find_spec("notte_exporter")
    assert spec is not None
    assert spec.origin is not None
    compileall.compile_dir(Path(spec.origin).parent, quiet=1)
    command = [sys.executable, "-c", _RSS_CHILD, json.dumps(list(RSS_LAYERS.values()))]
    steps = []
    for _ in range(runs):
        result = subprocess.run(  # noqa: S603 - this interpreter, running the code above
            command,
            env={**_without_notte(os.environ), "NOTTE_API_KEY": "bench-key"},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        steps.append(json.loads(result.stdout.splitlines()[-1]))
    added = [
        statistics.median(s[i] - (s[i - 1] if i else 0) for s in steps) / 1024
        for i in range(len(RSS_STEPS))
    ]
    return {
        "runs": runs,
        "rows": [{"layer": n, "mb": round(mb, 1)} for n, mb in zip(RSS_STEPS, added, strict=True)],
        "total_mb": round(statistics.median(s[-1] for s in steps) / 1024, 1),
    }


def _without_notte(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if not k.startswith("NOTTE_")}


def run(fleet: Fleet, sessions: int, repeats: int, scrape_inner: int, runs: int) -> dict[str, Any]:
    fleet.grow_to(sessions)
    pages = fleet.snapshot_pages()
    return {
        "sessions": sessions,
        "poll_parts": poll_parts(pages, fleet.clock, repeats),
        "scrape_layers": scrape_layers(pages, fleet.clock, repeats, scrape_inner),
        "rss_layers": rss_layers(runs),
    }


def tables(breakdown: dict[str, Any]) -> list[Table]:
    parts, layers = breakdown["poll_parts"], breakdown["scrape_layers"]
    memory = breakdown["rss_layers"]
    return [
        (
            f"Where a poll's CPU goes, {breakdown['sessions']} live sessions: each part alone, "
            f"against json.loads of the same pages ({parts['floor_ms']} ms)",
            ["part", "cpu ms", "ratio"],
            [[row["part"], row["cpu_ms"], row["ratio"]] for row in parts["rows"]],
        ),
        (
            f"A scrape over HTTP, layer by layer ({layers['bytes']} bytes), against the floor",
            ["encoding", "layer", "ms", "ratio"],
            [[r["encoding"], r["layer"], r["ms"], r["ratio"]] for r in layers["rows"]],
        ),
        (
            "A scrape's own work, CPU per scrape",
            ["work", "us", "bytes"],
            [[r["work"], r["us"], r["bytes"]] for r in layers["scrape_work"]],
        ),
        (
            f"Resident memory, layer by layer (median of {memory['runs']} fresh processes; "
            f"total {memory['total_mb']} MB)",
            ["layer", "MB"],
            [[row["layer"], row["mb"]] for row in memory["rows"]],
        ),
    ]
