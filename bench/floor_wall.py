"""A poll's wall time against its floor: every page requested at once.

The pages of the fleet are served from a child process that holds each answer ``rtt``
seconds, standing for the network's round trip. The exporter polls with its default
``--notte.concurrency`` (after a first poll has taught it the page count, as in the
daemon); the floor asks for every one of the same requests at once, one thread each, with
a bare httpx client. Interleaved. Target: the poll within 1.5 s for 10,000 sessions at
50 ms (an absolute target: the ratio says how far from what the network allows).
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import httpx

from .fixtures import PAGE_SIZE, StaticPages, make_exporter
from .page_server import PageServer

TARGET_SECONDS = 1.5


def run(pages: StaticPages, clock: Any, repeats: int, rtt: float) -> dict[str, Any]:
    paths = [
        "/sessions?"
        + urlencode({"page": page, "page_size": PAGE_SIZE, "only_active": str(active).lower()})
        for active, page in sorted(pages.pages)
    ]
    with PageServer(pages.pages, rtt) as url:
        exporter = make_exporter(clock, api_url=url)
        concurrency = exporter.settings.notte_concurrency
        limits = httpx.Limits(max_connections=None)
        with (
            httpx.Client(base_url=url, timeout=60, limits=limits) as client,
            ThreadPoolExecutor(len(paths)) as pool,
        ):

            def floor() -> None:
                for response in pool.map(client.get, paths):
                    response.raise_for_status()

            floor()  # warm up: one connection per request
            if not exporter.poll_once().ok:
                raise RuntimeError("a benchmark poll failed")
            samples: dict[str, list[float]] = {"poll": [], "floor": []}
            for repeat in range(repeats):
                order = ("poll", "floor") if repeat % 2 == 0 else ("floor", "poll")
                for name in order:
                    started = time.perf_counter()
                    if name == "poll":
                        if not exporter.poll_once().ok:
                            raise RuntimeError("a benchmark poll failed")
                    else:
                        floor()
                    samples[name].append(time.perf_counter() - started)
        exporter.close()
    poll, floor_s = (statistics.median(samples[name]) for name in ("poll", "floor"))
    return {
        "sessions": pages.live_sessions,
        "requests": len(paths),
        "rtt_ms": round(rtt * 1e3, 1),
        "concurrency": concurrency,
        "poll_s": round(poll, 3),
        "floor_s": round(floor_s, 3),
        "ratio": round(poll / floor_s, 2),
        "target_s": TARGET_SECONDS,
    }
