"""Run the simulated Notte API on its own: `python -m notte_exporter.simulator --help`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .account import PROFILES, SimulatedAccount
from .billing import PLANS
from .server import SimulatorServer


def _listen_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m notte_exporter.simulator",
        description="Serve a simulated Notte account (GET /sessions, /sessions/{id}, /usage) "
        "on HTTP.",
    )
    parser.add_argument(
        "--listen",
        type=_listen_address,
        default=("127.0.0.1", 0),
        metavar="HOST:PORT",
        help="address to serve on (default 127.0.0.1:0, a free port)",
    )
    parser.add_argument("--profile", choices=PROFILES, default="steady", help="account behaviour")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        help="how many times faster than real time sessions live and die (default 1)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("NOTTE_API_KEY"),
        help="Bearer key clients must send (default $NOTTE_API_KEY; unset accepts any key)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=100,
        help="requests allowed per window; 0 turns rate limiting off (default 100)",
    )
    parser.add_argument(
        "--rate-window",
        type=_positive_float,
        default=60.0,
        help="rate-limit window in seconds (default 60)",
    )
    parser.add_argument(
        "--browser-rate",
        type=_positive_float,
        default=None,
        metavar="DOLLARS",
        help="GET /usage: dollars per browser hour (default: the profile's plan, 0.10)",
    )
    parser.add_argument(
        "--proxy-rate",
        type=_positive_float,
        default=None,
        metavar="DOLLARS",
        help="GET /usage: dollars per proxied GB (default: the profile's plan, 4)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    host, port = args.listen
    plan = PLANS[args.profile]
    if args.browser_rate is not None:
        plan = dataclasses.replace(plan, browser_rate_per_hour=args.browser_rate)
    if args.proxy_rate is not None:
        plan = dataclasses.replace(plan, proxy_rate_per_gb=args.proxy_rate)
    account = SimulatedAccount(
        seed=args.seed, profile=args.profile, speed=args.speed, usage_plan=plan
    )
    server = SimulatorServer(
        account,
        api_key=args.api_key,
        host=host,
        port=port,
        rate_limit=args.rate_limit or None,
        rate_window=args.rate_window,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    with server:
        # The first stdout line is the URL, so scripts can read where it listens.
        print(server.url, flush=True)
        while not stop.wait(1.0):
            pass
    print("simulator stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
