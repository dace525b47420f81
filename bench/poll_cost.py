"""Poll cost against the number of live sessions: is a poll's work linear in sessions?

For each fleet size the same poll is timed two ways, interleaved, on pages rendered in
advance and answered through ``httpx.MockTransport`` (no socket, no simulator):

* ``exporter``: the exporter's ``poll_once()`` and one scrape (``fixtures.poll_interval``):
  its own cost, client and retries included, and the rendering of the exposition;
* ``raw``: a bare httpx client fetching and decoding the same requests: the floor any
  client pays.

Linear work means a per-session cost that does not grow with the fleet: the per-session
cost at N over that at the smallest N, and the marginal cost of each added session over the
first interval's, stay near 1 (or fall, as fixed per-poll costs spread over more sessions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from .fixtures import OFFLINE_URL, PAGE_SIZE, Fleet, StaticPages, make_exporter, poll_interval
from .timing import interleaved_medians, ratio


def measure_size(fleet: Fleet, pages: StaticPages, repeats: int) -> dict[str, Any]:
    exporter = make_exporter(fleet.clock, transport=pages.transport())
    poll = poll_interval(exporter)  # polls first: the first sees every session for the first time
    urls = [
        httpx.URL(
            f"{OFFLINE_URL}/sessions",
            params={"page": page, "page_size": PAGE_SIZE, "only_active": str(active).lower()},
        )
        for active, page in sorted(pages.pages)
    ]
    with httpx.Client(transport=pages.transport()) as client:

        def raw() -> None:
            for url in urls:
                client.get(url).json()

        # Small fleets poll in a millisecond: batch calls so a sample is not all timer noise.
        inner = max(1, 1000 // max(pages.live_sessions, 1))
        seconds = interleaved_medians({"exporter": poll, "raw": raw}, repeats, inner)
    exporter.close()
    return {"sessions": pages.live_sessions, "pages": len(urls), "seconds": seconds}


def run(
    fleet: Fleet, sizes: Sequence[int], repeats: int
) -> tuple[dict[str, Any], list[StaticPages]]:
    """Measure every size; returns the report section and the pages (reused by scrapes)."""
    rows: list[dict[str, Any]] = []
    snapshots: list[StaticPages] = []
    for size in sorted(sizes):
        fleet.grow_to(size)
        snapshots.append(fleet.snapshot_pages())
        rows.append(measure_size(fleet, snapshots[-1], repeats))
    first = rows[0]
    for index, row in enumerate(rows):
        seconds, n = row["seconds"], row["sessions"]
        row["us_per_session"] = {k: round(v / n * 1e6, 3) for k, v in seconds.items()}
        row["per_session_ratio"] = {
            k: ratio(v / n, first["seconds"][k] / first["sessions"]) for k, v in seconds.items()
        }
        row["exporter_over_raw"] = ratio(seconds["exporter"], seconds["raw"])
        row["exporter_marginal_ratio"] = (
            ratio(_marginal(rows, index), _marginal(rows, 1)) if index else None
        )
    return {"page_size": PAGE_SIZE, "repeats": repeats, "rows": rows}, snapshots


def _marginal(rows: list[dict[str, Any]], index: int) -> float:
    """The exporter's seconds per session added between row ``index - 1`` and ``index``."""
    before, after = rows[index - 1], rows[index]
    seconds: float = after["seconds"]["exporter"] - before["seconds"]["exporter"]
    added: int = after["sessions"] - before["sessions"]
    return seconds / added


def table(poll: dict[str, Any]) -> tuple[str, list[str], list[list[object]]]:
    return (
        f"Poll cost, ms per poll (median of {poll['repeats']}; page size {poll['page_size']}); "
        "x: per-session cost against the smallest fleet's; marginal x: each added session's",
        ["sessions", "requests", "exporter", "raw", "exporter/raw", "exporter us/session",
         "exporter x", "raw x", "marginal x"],
        [
            [row["sessions"], row["pages"], row["seconds"]["exporter"] * 1e3,
             row["seconds"]["raw"] * 1e3, row["exporter_over_raw"],
             row["us_per_session"]["exporter"], row["per_session_ratio"]["exporter"],
             row["per_session_ratio"]["raw"], row["exporter_marginal_ratio"]]
            for row in poll["rows"]
        ],
    )  # fmt: skip
