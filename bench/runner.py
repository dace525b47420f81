"""Runs the benchmark's phases, prints a table for each and writes the JSON report."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notte_exporter import __version__

from . import breakdown, floors, memory_bound, poll_cost, scrape_cost
from .fixtures import Fleet, quiet_logs

DEFAULT_OUTPUT = Path(__file__).parent / "results" / "latest.json"


@dataclass(frozen=True)
class Plan:
    """How much work each phase does; ``--quick`` shrinks everything to seconds."""

    sizes: tuple[int, ...]
    repeats: int
    scrape_inner: int
    http_scrapes: int
    churn_polls: int
    churn_per_poll: int
    memory_samples: int
    cap_ends: int
    # Smaller than the exporter's default (200 000), which would take minutes under
    # tracemalloc: the cap works the same, and the report extrapolates bytes per end.
    cap_max_ended: int
    floor_sessions: int
    floor_repeats: int
    rss_runs: int


FULL = Plan(
    sizes=(100, 500, 1000, 2500, 5000),
    repeats=9,
    scrape_inner=20,
    http_scrapes=200,
    churn_polls=240,
    churn_per_poll=400,
    memory_samples=12,
    cap_ends=75_000,
    cap_max_ended=50_000,
    floor_sessions=10_000,
    floor_repeats=7,
    rss_runs=5,
)
QUICK = Plan(
    sizes=(50, 200),
    repeats=2,
    scrape_inner=3,
    http_scrapes=10,
    churn_polls=24,
    churn_per_poll=20,
    memory_samples=4,
    cap_ends=3_000,
    cap_max_ended=2_000,
    floor_sessions=300,
    floor_repeats=2,
    rss_runs=1,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark notte-exporter: poll cost against sessions, scrape cost, memory "
        "bound, and the guards (targets against floors measured in the same run).",
    )
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds), for tests")
    parser.add_argument("--only-floors", action="store_true", help="run only the guards")
    parser.add_argument(
        "--breakdown", action="store_true", help="also say where the guarded costs go"
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON report ({DEFAULT_OUTPUT})"
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(sorted(int(part) for part in text.split(","))),
        help="live-session counts of the poll cost, comma-separated (100,500,1000,2500,5000)",
    )
    parser.add_argument("--repeats", type=int, help="timed repeats per measurement (median)")
    parser.add_argument(
        "--floor-sessions", type=int, help="live sessions of the guards (default 10000)"
    )
    parser.add_argument(
        "--rtt", type=float, default=50.0, help="round trip of the poll wall guard, ms (50)"
    )
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.sizes:
        plan = replace(plan, sizes=args.sizes)
    if args.repeats:
        plan = replace(plan, repeats=args.repeats, floor_repeats=args.repeats)
    if args.floor_sessions:
        plan = replace(plan, floor_sessions=args.floor_sessions)
    rtt = (min(args.rtt, 5.0) if args.quick else args.rtt) / 1e3
    quiet_logs()
    began = time.perf_counter()
    report: dict[str, Any] = {}
    # The guards first, in a process that holds nothing of the other phases: they measure
    # the exporter, and the mock poll read higher after them (docs/benchmarks.md).
    fleet = Fleet(seed=args.seed)
    report["floors"] = floors.run(
        fleet, plan.floor_sessions, plan.floor_repeats, plan.scrape_inner, rtt
    )
    tables = [floors.table(report["floors"])]
    if args.breakdown:
        report["breakdown"] = breakdown.run(
            fleet, plan.floor_sessions, plan.floor_repeats, plan.scrape_inner, plan.rss_runs
        )
    del fleet
    if not args.only_floors:
        fleet = Fleet(seed=args.seed)
        empty = fleet.snapshot_pages()
        report["poll"], snapshots = poll_cost.run(fleet, plan.sizes, plan.repeats)
        report["scrape"] = scrape_cost.run(
            fleet, [empty, *snapshots], plan.repeats, plan.scrape_inner, plan.http_scrapes
        )
        report["memory"] = memory_bound.churn(
            plan.churn_polls, plan.churn_per_poll, plan.memory_samples, args.seed
        )
        report["ended_cap"] = memory_bound.ended_cap(
            plan.cap_ends, plan.cap_max_ended, plan.memory_samples
        )
        tables += [
            poll_cost.table(report["poll"]),
            scrape_cost.table(report["scrape"]),
            *memory_bound.tables(report["memory"], report["ended_cap"]),
        ]
    if args.breakdown:
        tables += breakdown.tables(report["breakdown"])
    report["meta"] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "exporter_version": __version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "plan": asdict(plan),
        "seconds": round(time.perf_counter() - began, 1),
    }
    print("\n\n".join(render(*table) for table in tables))
    print(f"\ntotal {report['meta']['seconds']} s, load average {os.getloadavg()}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"report written to {args.output}", file=sys.stderr)
    # A quick run's fleet is too small for the targets, which are set for 10 000 sessions.
    missed = [] if args.quick else floors.missed(report["floors"])
    if missed:
        print(f"guards missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def render(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, right-aligned, under its title."""
    cells = [list(header), *([_cell(cell) for cell in row] for row in rows)]
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
