"""``python -m soak --days 30``: run the soak and print its tables (see docs/accuracy.md)."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from .report import accuracy_table, memory_table, summary, unexplained
from .run import POLL_INTERVAL, Soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--days", type=float, default=30.0, help="simulated days (default 30)")
    parser.add_argument("--seed", type=int, default=23, help="the scenario's seed")
    parser.add_argument(
        "--poll-interval", type=float, default=POLL_INTERVAL, help="simulated seconds"
    )
    parser.add_argument(
        "--scrapes", default="", help="write every scrape to this OpenMetrics file"
    )
    args = parser.parse_args(argv)
    if args.days <= 0 or args.poll_interval <= 0:
        parser.error("--days and --poll-interval must be positive")
    # The injected faults make the exporter log a failure a minute; the tables say it all.
    logging.disable(logging.WARNING)
    began = time.monotonic()
    result = Soak(
        args.days,
        seed=args.seed,
        poll_interval=args.poll_interval,
        scrape_path=args.scrapes or None,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    ).run()
    print(summary(result))
    print(f"wall time {time.monotonic() - began:.0f} s\n")
    print("## Accuracy\n\n" + accuracy_table(result) + "\n")
    print("## Memory\n\n" + memory_table(result) + "\n")
    wrong = unexplained(result)
    for key, off in sorted(wrong.items()):
        print(f"UNEXPLAINED {key}: {off:+,.3f}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
