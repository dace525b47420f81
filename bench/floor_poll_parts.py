"""Where a poll's CPU goes, part by part, each against the same ``json.loads`` floor.

``floor_poll_cpu`` says how far a whole poll is from decoding its bytes; this says which
parts make up the distance, so that a target can be judged against what the libraries the
exporter is built on cost by themselves. Each part runs alone on the same fleet, measured
with ``time.process_time`` and interleaved with the floor:

* ``parse``: every page the poll reads, read as it reads them, each dropped once read, as the
  poll drops it (pydantic-core decoding and validating);
* ``httpx (mock)`` and ``httpx (loopback)``: a bare httpx client fetching the same requests
  (URLs built once, as the exporter does), through the same ``MockTransport`` and from the
  same static page server: what the HTTP client costs before the exporter does anything;
* ``track``: the lifecycle tracker's steady state, fed the live listing page by page;
* ``summarise``: the snapshot of the live sessions, added page by page;
* ``publish``: rendering the exposition (both formats, gzip) after a poll: a poll that does
  not publish (``Poller.poll()``, not timed) runs first, so that what it changed is
  rendered again, as it is after every poll (publish keeps the bytes of the families that
  did not change).

The parts do not add up to a poll exactly (a poll also pages, dedupes, counts its requests
and runs a thread pool), but they bound what any poll built on these libraries costs.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import httpx

from notte_exporter.models import LiveSession, in_api_utc, parse_live_page

from .fixtures import (
    OFFLINE_URL,
    PAGE_SIZE,
    StaticPages,
    decode_each,
    make_exporter,
    parse_each,
    summarise_pages,
)
from .page_server import PageServer
from .timing import cpu_once


def _fetch_all(client: httpx.Client, urls: list[httpx.URL]) -> Callable[[], None]:
    def fetch() -> None:
        for url in urls:
            client.get(url).read()

    return fetch


def _nothing() -> None:
    pass


def run(pages: StaticPages, clock: Any, repeats: int) -> dict[str, Any]:
    keys = sorted(pages.pages)
    bodies = [pages.pages[key] for key in keys]
    # The live listing, read once in advance and fed to the parts a page at a time.
    live: list[list[LiveSession]] = [
        parse_live_page(body).sessions
        for (active, _), body in zip(keys, bodies, strict=True)
        if active
    ]
    now = in_api_utc(clock.now())
    exporter = make_exporter(clock, transport=pages.transport())
    if not exporter.poll_once().ok:
        raise RuntimeError("a benchmark poll failed")
    tracker = exporter.tracker

    def urls(base: str) -> list[httpx.URL]:
        return [
            httpx.URL(
                f"{base}/sessions",
                params={"page": page, "page_size": PAGE_SIZE, "only_active": str(active).lower()},
            )
            for active, page in keys
        ]

    def track() -> None:
        listing = tracker.begin_listing(now)
        for page in live:
            listing.add(page)
        listing.complete()

    def summary() -> None:
        summarise_pages(live, now)

    floor = decode_each(bodies)
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
            "httpx (mock)": _fetch_all(mock_client, urls(OFFLINE_URL)),
            "httpx (loopback)": _fetch_all(loopback_client, urls(url)),
            "track": track,
            "summarise": summary,
            "publish": exporter.published.publish,
        }
        before: dict[str, Callable[[], object]] = {"publish": exporter.poller.poll}
        for part in parts.values():  # warm up: connections, caches
            part()
        samples: dict[str, list[float]] = {"floor": [], **{name: [] for name in parts}}
        for _ in range(repeats):
            for name, part in parts.items():
                samples["floor"].append(cpu_once(floor))
                before.get(name, _nothing)()
                samples[name].append(cpu_once(part))
    exporter.close()
    cpu = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "floor_ms": round(cpu["floor"] * 1e3, 2),
        "rows": [
            {
                "part": name,
                "cpu_ms": round(cpu[name] * 1e3, 2),
                "ratio": round(cpu[name] / cpu["floor"], 2),
            }
            for name in parts
        ],
    }
