"""Plain-text tables of a benchmark report (the JSON report holds everything)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .floors import parts_rows, table_rows


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(cell) for cell in header]] + [[_cell(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [title]
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _ms(seconds: float) -> float:
    return seconds * 1e3


def poll_tables(poll: dict[str, Any]) -> list[str]:
    rows = poll["rows"]
    absolute = _table(
        f"Poll cost, ms per poll (median of {poll['repeats']}; page size {poll['page_size']})",
        ["sessions", "pages", "e2e", "sim_listing", "exporter", "raw", "exporter/raw"],
        [
            [
                r["sessions"],
                r["pages"],
                _ms(r["seconds"]["e2e"]),
                _ms(r["seconds"]["sim_listing"]),
                _ms(r["seconds"]["exporter"]),
                _ms(r["seconds"]["raw"]),
                r["exporter_over_raw"],
            ]
            for r in rows
        ],
    )
    keys = ("exporter", "decode", "parse", "track", "summarise", "e2e", "sim_listing")
    per_session = _table(
        f"Per-session cost, us, and its ratio to the {poll['baseline_sessions']}-session run "
        "(x; marginal: cost of each added session vs the first interval's)",
        ["sessions"]
        + [f"{k} us" for k in keys[:5]]
        + [f"{k} x" for k in keys]
        + ["exporter marginal x"],
        [
            [r["sessions"]]
            + [r["us_per_session"][k] for k in keys[:5]]
            + [r["per_session_ratio"][k] for k in keys]
            + [(r["marginal_ratio"] or {}).get("exporter")]
            for r in rows
        ],
    )
    return [absolute, per_session]


def scrape_tables(scrape: dict[str, Any]) -> list[str]:
    table = _table(
        f"Scrape cost: exposition() ms (median of {scrape['repeats']}x{scrape['inner']}), "
        f"ratio to {scrape['baseline_sessions']} live sessions and to the smallest non-empty fleet",
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
            for r in scrape["rows"]
        ],
    )
    http = scrape["http"]
    line = (
        f"HTTP: {http['scrapes']} scrapes of /metrics with {http['live_sessions']} live sessions, "
        f"median {http['http_scrape_ms_median']} ms; API requests during the scrapes: "
        f"{http['api_requests_during_scrapes']} "
        f"(the first poll made {http['api_requests_of_first_poll']})"
    )
    return [table, line]


def memory_tables(memory: dict[str, Any], cap: dict[str, Any]) -> list[str]:
    churn = _table(
        f"Memory under churn: {memory['churn_per_poll']} new sessions per poll, clock "
        f"+{memory['step_seconds']} s per poll (horizon {memory['horizon_hours']} h)",
        [
            "poll",
            "started",
            "hours",
            "live",
            "pending",
            "ended kept",
            "exporter KiB",
            "peak KiB",
            "exporter RSS KiB",
            "simulator RSS KiB",
        ],
        [
            [
                r["poll"],
                r["sessions_started"],
                r["hours"],
                r["live"],
                r["pending"],
                r["ended_remembered"],
                r["exporter_kib"],
                r["exporter_peak_kib"],
                r["exporter_rss_kib"],
                r["simulator_rss_kib"],
            ]
            for r in memory["rows"]
        ],
    )
    summary = memory["summary"]
    churn_line = (
        f"poll {summary['late_poll']} vs poll {summary['early_poll']}: sessions x"
        f"{summary['sessions_ratio']}, exporter memory x{summary['memory_ratio']}, "
        f"ended ids kept x{summary['ended_remembered_ratio']}; ends counted by status: "
        f"{memory['closed_by_status']}"
    )
    capped = _table(
        f"Ended-id cap: ended sessions fed to a tracker whose clock stands still "
        f"(max_ended {cap['max_ended']})",
        ["ends fed", "ended kept", "KiB"],
        [[r["ends_fed"], r["ended_remembered"], r["kib"]] for r in cap["rows"]],
    )
    cap_summary = cap["summary"]
    cap_line = (
        f"after the cap: ends x{cap_summary['ends_ratio']}, memory x{cap_summary['memory_ratio']}"
        f"; about {cap_summary['bytes_per_remembered_end']} bytes per remembered end, so "
        f"about {cap_summary['default_cap_estimate_mib']} MiB at the default cap of "
        f"{cap['default_max_ended']}"
    )
    return [churn, churn_line, capped, cap_line]


def floor_tables(floors: dict[str, Any] | None) -> list[str]:
    if floors is None:
        return []
    return [
        _table(
            f"Targets against their floors, {floors['sessions']} live sessions "
            "(medians; measured interleaved in this run)",
            ["measurement", "exporter", "floor", "ratio", "target", "verdict"],
            table_rows(floors),
        ),
        _table(
            "Where a poll's CPU goes: each part alone, against the same floor",
            ["part", "cpu", "floor", "ratio"],
            parts_rows(floors),
        ),
    ]


def render_tables(report: dict[str, Any]) -> str:
    if report.get("poll") is None:
        return "\n\n".join(
            [*floor_tables(report["floors"]), f"total {report['meta']['seconds']} s"]
        )
    parts = [
        *floor_tables(report.get("floors")),
        *poll_tables(report["poll"]),
        *scrape_tables(report["scrape"]),
        *memory_tables(report["memory"], report["ended_cap"]),
        f"total {report['meta']['seconds']} s",
    ]
    return "\n\n".join(parts)
