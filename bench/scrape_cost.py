"""Scrape cost against the number of live sessions, and proof that scrapes never call the API.

A scrape serves what the last poll published; its only per-session part, the
``notte_session_*`` detail series, is capped by ``--sessions.detail-limit`` (20 by default).
So ``exposition()`` should cost the same with 0 and with thousands of live sessions: each
size's median is reported as a ratio against the empty account's, measured interleaved.

Then the daemon is started for real (HTTP server and poll thread) against the simulator and
scraped over HTTP many times: the simulator must record no request during the scrapes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import httpx

from notte_exporter.daemon import Exporter
from notte_exporter.simulator import SimulatorServer

from .fixtures import KEY, Fleet, StaticPages, make_exporter
from .timing import interleaved_medians, ratio

_READY_TIMEOUT_S = 120.0


def measure_exposition(
    fleet: Fleet, snapshots: Sequence[StaticPages], repeats: int, inner: int
) -> list[dict[str, Any]]:
    exporters: dict[int, Exporter] = {}
    for pages in snapshots:
        exporter = make_exporter(fleet.clock, transport=pages.transport())
        status = exporter.poll_once()
        assert status.ok, f"poll failed: {status.message}"
        exporters[pages.live_sessions] = exporter
    try:
        seconds = interleaved_medians(
            {str(n): exporter.exposition for n, exporter in exporters.items()},
            repeats,
            inner,
        )
        rows: list[dict[str, Any]] = []
        baseline_n = min(exporters)
        # The empty account has no detail series at all; from the first non-empty size on
        # there are detail-limit of them, so flatness shows best against that size.
        nonempty_n = min((n for n in exporters if n > 0), default=baseline_n)
        for n, exporter in exporters.items():
            text = exporter.exposition()
            samples = [line for line in text.splitlines() if line and not line.startswith(b"#")]
            rows.append(
                {
                    "sessions": n,
                    "ms": round(seconds[str(n)] * 1e3, 4),
                    "ratio": ratio(seconds[str(n)], seconds[str(baseline_n)]),
                    "ratio_nonempty": ratio(seconds[str(n)], seconds[str(nonempty_n)]),
                    "bytes": len(text),
                    "samples": len(samples),
                    "detail_series": sum(1 for s in samples if b"session_id=" in s),
                }
            )
    finally:
        for exporter in exporters.values():
            exporter.close()
    return rows


def measure_http(fleet: Fleet, scrapes: int) -> dict[str, Any]:
    """Serve the daemon for real and scrape it; count the API requests the scrapes made."""
    with SimulatorServer(fleet.account, api_key=KEY, rate_limit=None) as server:
        # As the daemon runs by default: the per-process series are read at each scrape.
        exporter = make_exporter(fleet.clock, api_url=server.url, process_metrics=True)
        url = exporter.start()
        try:
            # The poll thread polls at once, then waits out a one-hour interval.
            if not exporter.state.wait_for_polls(1, timeout=_READY_TIMEOUT_S):
                raise RuntimeError("the exporter's first poll did not finish")
            api_before = len(server.requests)
            timings: list[float] = []
            with httpx.Client() as client:
                for index in range(scrapes):
                    # Alternate plain and gzip scrapes, as Prometheus and curl would.
                    headers = {"Accept-Encoding": "gzip"} if index % 2 else {}
                    started = time.perf_counter()
                    response = client.get(url, headers=headers)
                    timings.append(time.perf_counter() - started)
                    response.raise_for_status()
            api_after = len(server.requests)
        finally:
            exporter.stop()
    return {
        "live_sessions": fleet.size,
        "scrapes": scrapes,
        "api_requests_during_scrapes": api_after - api_before,
        "api_requests_of_first_poll": api_before,
        "http_scrape_ms_median": round(statistics.median(timings) * 1e3, 3),
    }


def run(
    fleet: Fleet, snapshots: Sequence[StaticPages], repeats: int, inner: int, scrapes: int
) -> dict[str, Any]:
    return {
        "repeats": repeats,
        "inner": inner,
        "rows": measure_exposition(fleet, snapshots, repeats, inner),
        "http": measure_http(fleet, scrapes),
    }


def table(scrape: dict[str, Any]) -> tuple[str, list[str], list[list[object]]]:
    rows = scrape["rows"]
    http = scrape["http"]
    return (
        f"Scrape cost: exposition() ms (median of {scrape['repeats']}x{scrape['inner']}), ratio "
        f"to {rows[0]['sessions']} live sessions and to the smallest non-empty fleet. HTTP: "
        f"{http['scrapes']} scrapes with {http['live_sessions']} live sessions, median "
        f"{http['http_scrape_ms_median']} ms, API requests during them: "
        f"{http['api_requests_during_scrapes']} (the first poll made "
        f"{http['api_requests_of_first_poll']})",
        ["sessions", "ms", "ratio", "ratio non-empty", "bytes", "samples", "detail series"],
        [
            [
                r["sessions"],
                r["ms"],
                r["ratio"],
                r["ratio_nonempty"],
                r["bytes"],
                r["samples"],
                r["detail_series"],
            ]
            for r in rows
        ],
    )
