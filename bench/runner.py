"""Runs the benchmark phases, prints a compact table and writes the JSON report."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notte_exporter import __version__

from . import floors, memory_bound, poll_cost, scrape_cost, server_latency
from .fixtures import Fleet, quiet_logs
from .report import render_tables

DEFAULT_OUTPUT = Path(__file__).parent / "results" / "latest.json"


@dataclass(frozen=True)
class Plan:
    """How much work each phase does; ``--quick`` shrinks everything to seconds."""

    sizes: tuple[int, ...]
    repeats: int
    scrape_repeats: int
    scrape_inner: int
    http_scrapes: int
    server_inner: int
    server_concurrency: int
    churn_polls: int
    churn_per_poll: int
    memory_samples: int
    cap_ends: int
    # Smaller than the exporter's default (200 000), which would take minutes under
    # tracemalloc: the cap works the same, and the report extrapolates bytes per end.
    cap_max_ended: int
    floor_sessions: int
    floor_repeats: int


FULL = Plan(
    sizes=(100, 500, 1000, 2500, 5000),
    repeats=5,
    scrape_repeats=7,
    scrape_inner=20,
    http_scrapes=200,
    server_inner=5,
    server_concurrency=50,
    churn_polls=240,
    churn_per_poll=400,
    memory_samples=12,
    cap_ends=75_000,
    cap_max_ended=50_000,
    floor_sessions=10_000,
    floor_repeats=7,
)
QUICK = Plan(
    sizes=(50, 200),
    repeats=2,
    scrape_repeats=2,
    scrape_inner=3,
    http_scrapes=10,
    server_inner=1,
    server_concurrency=5,
    churn_polls=24,
    churn_per_poll=20,
    memory_samples=4,
    cap_ends=3_000,
    cap_max_ended=2_000,
    floor_sessions=300,
    floor_repeats=2,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark notte-exporter: poll cost vs sessions, scrape cost, memory "
        "bound. Numbers are ratios against baselines measured in the same run.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds), for tests")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"JSON report (default {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(part) for part in text.split(",")),
        help="live-session counts to poll, comma-separated (default 100,500,1000,2500,5000)",
    )
    parser.add_argument("--repeats", type=int, help="timed repeats per measurement (median)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rtt",
        type=float,
        default=50.0,
        help="simulated round trip of the wall-time floor, ms (default 50)",
    )
    parser.add_argument(
        "--floor-sessions", type=int, help="live sessions of the floors phase (default 10000)"
    )
    parser.add_argument(
        "--only-floors", action="store_true", help="run only the targets-against-floors phase"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.sizes:
        plan = _replace(plan, sizes=tuple(sorted(args.sizes)))
    if args.repeats:
        plan = _replace(plan, repeats=args.repeats, scrape_repeats=args.repeats)
    if args.floor_sessions:
        plan = _replace(plan, floor_sessions=args.floor_sessions)
    quiet_logs()
    began = time.perf_counter()
    fleet = Fleet(seed=args.seed)
    poll = scrape = server = memory = cap = None
    if not args.only_floors:
        empty = fleet.snapshot_pages()
        poll, snapshots = poll_cost.run(fleet, plan.sizes, plan.repeats)
        scrape = scrape_cost.run(
            fleet, [empty, *snapshots], plan.scrape_repeats, plan.scrape_inner, plan.http_scrapes
        )
        server = server_latency.run(
            fleet, snapshots[-1], plan.scrape_repeats, plan.server_inner, plan.server_concurrency
        )
        memory = memory_bound.churn(
            plan.churn_polls, plan.churn_per_poll, plan.memory_samples, args.seed
        )
        cap = memory_bound.ended_cap(
            plan.cap_ends,
            plan.cap_max_ended,
            plan.memory_samples,
        )
    floor = floors.run(
        fleet,
        max(plan.floor_sessions, fleet.size),
        plan.floor_repeats,
        plan.scrape_inner,
        args.rtt / 1e3 if not args.quick else min(args.rtt, 5.0) / 1e3,
    )
    report: dict[str, Any] = {
        "meta": {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "exporter_version": __version__,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "plan": asdict(plan),
            "seconds": round(time.perf_counter() - began, 1),
        },
        "poll": poll,
        "scrape": scrape,
        "server": server,
        "memory": memory,
        "ended_cap": cap,
        "floors": floor,
    }
    print(render_tables(report))
    if server is not None:
        print("\n" + server_latency.table(server))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"report written to {args.output}", file=sys.stderr)
    return 0


def _replace(plan: Plan, **changes: Any) -> Plan:
    return Plan(**{**asdict(plan), **changes})
