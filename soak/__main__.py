"""``python -m soak --days 30``: run the soak and print its tables (see docs/accuracy.md)."""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time

from .alerts import Backfill, evaluate
from .report import (
    accuracy_table,
    alert_table,
    false_alarms,
    late_leaks,
    memory_table,
    missed_leaks,
    summary,
    unexplained,
)
from .run import POLL_INTERVAL, Soak
from .scrapes import RULES


def _cpu_seconds() -> tuple[float, float]:
    """User and system CPU seconds of this process, and of the children it waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--days", type=float, default=30.0, help="simulated days (default 30)")
    parser.add_argument("--seed", type=int, default=23, help="the scenario's seed")
    parser.add_argument(
        "--poll-interval", type=float, default=POLL_INTERVAL, help="simulated seconds"
    )
    parser.add_argument(
        "--scrapes",
        default="",
        help="write every scrape to OpenMetrics files (one a simulated day) in this directory",
    )
    parser.add_argument(
        "--alerts",
        action="store_true",
        help="evaluate the bundle's rules over the scrapes in a real Prometheus (needs "
        "--scrapes, prometheus and promtool)",
    )
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="follow the exporter's allocations with tracemalloc (slower): the memory table "
        "then says which files hold it",
    )
    args = parser.parse_args(argv)
    if args.days <= 0 or args.poll_interval <= 0:
        parser.error("--days and --poll-interval must be positive")
    if args.alerts and not args.scrapes:
        parser.error("--alerts reads the scrapes: give --scrapes FILE too")
    # The injected faults make the exporter log a failure a minute; the tables say it all.
    logging.disable(logging.WARNING)
    began = time.monotonic()
    backfill = Backfill() if args.alerts else None
    result = Soak(
        args.days,
        seed=args.seed,
        poll_interval=args.poll_interval,
        scrape_path=args.scrapes or None,
        on_scrapes=backfill.add if backfill is not None else None,
        trace_memory=args.trace_memory,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    ).run()
    ran = time.monotonic()
    print(summary(result))
    own, children = _cpu_seconds()
    exporter = result.memory[-1].exporter.cpu_seconds
    print(
        f"run: wall time {ran - began:.0f} s, CPU {own:.0f} s (soak) + {exporter:.0f} s "
        f"(exporter process) + {children - exporter:.0f} s (promtool, in the background)\n"
    )
    print("## Accuracy\n\n" + accuracy_table(result) + "\n")
    print("## Memory\n\n" + memory_table(result) + "\n")
    wrong = unexplained(result)
    for key, off in sorted(wrong.items()):
        print(f"UNEXPLAINED {key}: {off:+,.3f}")
    failed = bool(wrong)
    if backfill is not None:
        firings = evaluate(backfill, RULES, result.start, result.end)
        print("## Alerts\n\n" + alert_table(result, firings) + "\n")
        for firing in false_alarms(result, firings):
            print(f"FALSE ALARM {firing.alert} {firing.start:%m-%d %H:%M}-{firing.end:%H:%M}")
            failed = True
        for episode in missed_leaks(result, firings):
            print(f"MISSED LEAK {episode.start:%m-%d %H:%M}")
            failed = True
        for episode in late_leaks(result, firings):
            print(f"LATE LEAK {episode.start:%m-%d %H:%M}")
            failed = True
        own_after, children_after = _cpu_seconds()
        print(
            f"alerts: wall time {time.monotonic() - ran:.0f} s, CPU "
            f"{own_after - own:.0f} s (soak) + {children_after - children:.0f} s "
            "(promtool, prometheus)\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
