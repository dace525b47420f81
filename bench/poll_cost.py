"""Poll cost against the number of live sessions: is a poll's work linear in sessions?

For each fleet size the same poll is timed four ways, interleaved:

* ``e2e``: the exporter polling the simulator over loopback HTTP (what the daemon does);
* ``sim_listing``: a bare httpx client fetching and decoding the same requests from the
  simulator: the API's and the transport's share of ``e2e``, the baseline to subtract;
* ``exporter``: the exporter polling pre-rendered pages through ``httpx.MockTransport``
  (no socket, no simulator): the exporter's own cost, client and retries included;
* ``raw``: a bare httpx client fetching and decoding those same pre-rendered pages: the
  floor any client pays, the baseline of ``exporter``.

and the exporter's own stages are timed on their own: ``decode`` (``json.loads`` of the
pages, their baseline), ``parse`` (``parse_live_page`` of the same bytes: decoding and validation),
``track`` (the lifecycle tracker's steady-state ``observe_live``) and ``summarise``.

Linear work means a per-session cost that does not grow with the fleet: the reported ratios
(per-session cost at N over per-session cost at the smallest N, and the marginal cost of
each added session over the first interval's) stay near 1, or fall as fixed per-poll costs
are spread over more sessions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from notte_exporter.labels import BROWSER_TYPES, BoundedLabel
from notte_exporter.lifecycle import LifecycleMetrics, LifecycleTracker
from notte_exporter.models import InvalidItem, in_api_utc, parse_session
from notte_exporter.simulator import SimulatorServer

from .fixtures import (
    KEY,
    OFFLINE_URL,
    PAGE_SIZE,
    Fleet,
    StaticPages,
    decode_each,
    make_exporter,
    parse_each,
    summarise_default,
)
from .timing import interleaved_medians, ratio

# Timed variants, in the order the report shows them; each "per session" and ratio column
# is derived from these.
VARIANTS = ("e2e", "sim_listing", "exporter", "raw", "decode", "parse", "track", "summarise")


def _fetcher(client: httpx.Client, live_pages: int) -> Callable[[], None]:
    """Fetch and decode what one poll requests: every live page and one history page."""

    def fetch() -> None:
        for page in range(1, live_pages + 1):
            client.get("/sessions", params=_params(page, only_active=True)).json()
        client.get("/sessions", params=_params(1, only_active=False)).json()

    return fetch


def _params(page: int, *, only_active: bool) -> dict[str, str | int]:
    return {
        "page": page,
        "page_size": PAGE_SIZE,
        "only_active": str(only_active).lower(),
        "only_current_token": "false",
    }


def _stage_candidates(pages: StaticPages, fleet: Fleet) -> dict[str, Callable[[], object]]:
    """The exporter's per-session stages, fed decoded pages directly."""
    bodies = pages.live_bodies()
    items: list[Any] = [item for body in bodies for item in json.loads(body)["items"]]
    sessions = [s for s in map(parse_session, items) if not isinstance(s, InvalidItem)]
    assert len(sessions) == pages.live_sessions, "every generated session must parse"
    now = in_api_utc(fleet.clock.now())
    browser_label = BoundedLabel(BROWSER_TYPES)
    tracker = LifecycleTracker(
        LifecycleMetrics(CollectorRegistry(), BROWSER_TYPES), browser_label, watch_start=now
    )
    tracker.observe_live(sessions, now)  # first sight counts starts; then steady state

    def track() -> None:
        tracker.observe_live(sessions, now)

    def summary() -> None:
        summarise_default(sessions, now)

    return {
        "decode": decode_each(bodies),
        "parse": parse_each(bodies),
        "track": track,
        "summarise": summary,
    }


def measure_size(
    fleet: Fleet, server: SimulatorServer, pages: StaticPages, repeats: int
) -> dict[str, Any]:
    n = pages.live_sessions
    live_pages = pages.live_page_count
    e2e = make_exporter(fleet.clock, api_url=server.url)
    offline = make_exporter(fleet.clock, transport=pages.transport())
    sim_client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"})
    raw_client = httpx.Client(base_url=OFFLINE_URL, transport=pages.transport())
    try:
        for exporter in (e2e, offline):
            # The first poll sees every session for the first time; later ones are steady.
            status = exporter.poll_once()
            assert status.ok, f"warm-up poll failed: {status.message}"

        def poll_e2e() -> None:
            assert e2e.poll_once().ok

        def poll_offline() -> None:
            assert offline.poll_once().ok

        candidates: dict[str, Callable[[], object]] = {
            "e2e": poll_e2e,
            "sim_listing": _fetcher(sim_client, live_pages),
            "exporter": poll_offline,
            "raw": _fetcher(raw_client, live_pages),
            **_stage_candidates(pages, fleet),
        }
        # Small fleets poll in a millisecond: batch calls so a sample is not all timer noise.
        inner = max(1, 1000 // max(n, 1))
        seconds = interleaved_medians(candidates, repeats, inner)
    finally:
        for client in (sim_client, raw_client):
            client.close()
        for exporter in (e2e, offline):
            exporter.close()
    return {"sessions": n, "pages": live_pages, "seconds": seconds}


def run(
    fleet: Fleet, sizes: Sequence[int], repeats: int
) -> tuple[dict[str, Any], list[StaticPages]]:
    """Measure every size; returns the report section and the pages (reused by scrapes)."""
    rows: list[dict[str, Any]] = []
    snapshots: list[StaticPages] = []
    with SimulatorServer(fleet.account, api_key=KEY, rate_limit=None) as server:
        for size in sorted(sizes):
            fleet.grow_to(size)
            pages = fleet.snapshot_pages()
            snapshots.append(pages)
            rows.append(measure_size(fleet, server, pages, repeats))
    _derive(rows)
    return {
        "page_size": PAGE_SIZE,
        "repeats": repeats,
        "baseline_sessions": rows[0]["sessions"],
        "rows": rows,
        "summary": _summary(rows),
    }, snapshots


def _derive(rows: list[dict[str, Any]]) -> None:
    """Per-session costs and their ratios against the smallest fleet (the baseline)."""
    first = rows[0]
    for index, row in enumerate(rows):
        n = row["sessions"]
        seconds = row["seconds"]
        row["own_seconds"] = max(seconds["e2e"] - seconds["sim_listing"], 0.0)
        row["us_per_session"] = {k: round(v / n * 1e6, 3) for k, v in seconds.items()}
        row["per_session_ratio"] = {
            k: ratio(v / n, first["seconds"][k] / first["sessions"]) for k, v in seconds.items()
        }
        # Exporter overhead over the bare floor of fetching and decoding the same bytes.
        row["exporter_over_raw"] = ratio(seconds["exporter"], seconds["raw"])
        row["e2e_over_sim_listing"] = ratio(seconds["e2e"], seconds["sim_listing"])
        if index == 0:
            row["marginal_ratio"] = None
            continue
        row["marginal_ratio"] = {
            k: ratio(_marginal(rows, index, k), _marginal(rows, 1, k)) for k in seconds
        }


def _marginal(rows: list[dict[str, Any]], index: int, key: str) -> float:
    """Seconds per session added between row ``index - 1`` and row ``index``."""
    before, after = rows[index - 1], rows[index]
    added: int = after["sessions"] - before["sessions"]
    seconds: float = after["seconds"][key] - before["seconds"][key]
    return seconds / added


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    last = rows[-1]
    return {
        "sessions_ratio": ratio(last["sessions"], rows[0]["sessions"]),
        "exporter_seconds_ratio": ratio(
            last["seconds"]["exporter"], rows[0]["seconds"]["exporter"]
        ),
        "exporter_per_session_ratio": last["per_session_ratio"]["exporter"],
        "exporter_marginal_ratio": (last["marginal_ratio"] or {}).get("exporter"),
        "e2e_per_session_ratio": last["per_session_ratio"]["e2e"],
        "sim_listing_per_session_ratio": last["per_session_ratio"]["sim_listing"],
    }
