"""The four targets of the fast path, each measured against its floor in the same run.

One module per measurement (``floor_scrape``, ``floor_poll_cpu``, ``floor_wall``,
``floor_rss``); this one runs them on one fleet and lays the results out side by side, each
ratio next to its target; ``floor_poll_parts`` adds where a poll's CPU goes, part by part.
``--only-floors`` runs just this phase.
"""

from __future__ import annotations

from typing import Any

from . import floor_poll_cpu, floor_poll_parts, floor_rss, floor_scrape, floor_wall
from .fixtures import Fleet


def run(fleet: Fleet, sessions: int, repeats: int, scrape_inner: int, rtt: float) -> dict[str, Any]:
    fleet.grow_to(sessions)
    pages = fleet.snapshot_pages()
    return {
        "sessions": sessions,
        "scrape": floor_scrape.run(pages, fleet.clock, repeats, scrape_inner),
        "poll_cpu": floor_poll_cpu.run(pages, fleet.clock, repeats),
        "poll_parts": floor_poll_parts.run(pages, fleet.clock, repeats),
        "poll_wall": floor_wall.run(pages, fleet.clock, repeats, rtt),
        "rss": floor_rss.run(pages),
    }


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def table_rows(floors: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for row in floors["scrape"]["rows"]:
        rows.append([f"scrape /metrics ({row['encoding']})", f"{row['exporter_ms']} ms",
                     f"{row['floor_ms']} ms static http.server", row["ratio"],
                     f"<= {row['target']}x", verdict(row["ratio"], row["target"])])  # fmt: skip
    for row in floors["scrape"]["rows"]:
        rows.append([f"scrape /metrics ({row['encoding']})", f"{row['exporter_ms']} ms",
                     f"{row['server_ms']} ms its server, constant bytes",
                     row["ratio_to_server"], "(no target)", "-"])  # fmt: skip
    cpu = floors["poll_cpu"]
    for row in cpu["rows"]:
        target = row["target"]
        rows.append([f"poll CPU ({row['transport']})", f"{row['poll_cpu_ms']} ms",
                     f"{cpu['floor_ms']} ms json.loads", row["ratio"],
                     "(no target)" if target is None else f"<= {target}x",
                     "-" if target is None else verdict(row["ratio"], target)])  # fmt: skip
    wall = floors["poll_wall"]
    met = verdict(wall["poll_s"], wall["target_s"])
    rows.append([f"poll wall ({wall['rtt_ms']} ms RTT, concurrency {wall['concurrency']})",
                 f"{wall['poll_s']} s", f"{wall['floor_s']} s all at once", wall["ratio"],
                 f"<= {wall['target_s']} s", met])  # fmt: skip
    rss = floors["rss"]
    rows.append(["resident memory (fresh process)", f"{rss['rss_mb']} MB",
                 f"peak {rss['peak_mb']} MB", None, f"<= {rss['target_mb']} MB",
                 verdict(rss["rss_mb"], rss["target_mb"])])  # fmt: skip
    return rows


def parts_rows(floors: dict[str, Any]) -> list[list[object]]:
    parts = floors["poll_parts"]
    return [
        [row["part"], f"{row['cpu_ms']} ms", f"{parts['floor_ms']} ms json.loads", row["ratio"]]
        for row in parts["rows"]
    ]
