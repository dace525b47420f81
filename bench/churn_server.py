"""The simulated account of the memory benchmark, in a process of its own.

The exporter's memory is measured with ``tracemalloc`` in the benchmark's process; keeping
the simulator (its sessions, its history, its HTTP threads) in another process keeps it out
of that measurement entirely, and lets it work on the second core. The parent drives it
through a pipe, one ``Step`` per poll, and keeps an identical ``ManualClock`` of its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

from notte_exporter.simulator import BROWSER_TYPES, ManualClock, SimulatedAccount, SimulatorServer

from .fixtures import KEY

_PAGE_BYTES = 4096


@dataclass(frozen=True)
class Step:
    """End the sessions due at ``poll``, start ``start`` new ones, move the clock on."""

    poll: int
    start: int
    advance_seconds: float


@dataclass(frozen=True)
class StepDone:
    sessions_started: int
    live: int
    rss_kib: int | None


def rss_kib() -> int | None:
    """Resident memory of this process, where /proc tells it (Linux)."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * _PAGE_BYTES // 1024


def serve(conn: Connection, start: datetime, seed: int) -> None:
    """Child process: serve the account over loopback HTTP and apply steps until told to stop."""
    clock = ManualClock(start)
    # Server-side timeouts are off: sessions end when the script ends them, and the
    # simulator does not re-check every live session's deadlines on every call.
    account = SimulatedAccount(clock=clock, seed=seed, profile=None, enforce_timeouts=False)
    rng = random.Random(seed)
    ends_at: dict[str, int] = {}
    started = 0
    with SimulatorServer(account, api_key=KEY, rate_limit=None) as server:
        conn.send(server.url)
        while (step := conn.recv()) is not None:
            assert isinstance(step, Step)
            for sid, poll in list(ends_at.items()):
                if poll > step.poll:
                    if rng.random() < 0.25:  # some still-running sessions did some work
                        account.access(sid, request_bytes=20_000, response_bytes=1_500_000)
                    continue
                del ends_at[sid]
                fate = rng.random()
                if fate < 0.8:
                    account.stop(sid)
                elif fate < 0.95:
                    account.fail(sid)
                else:
                    account.remove(sid)  # vanished without a trace: the API answers 404
            for _ in range(step.start):
                sid = account.start_session(
                    browser_type=rng.choice(BROWSER_TYPES), proxies=rng.random() < 0.3
                )
                ends_at[sid] = step.poll + rng.choice((1, 1, 2, 3))
            started += step.start
            clock.advance(step.advance_seconds)
            conn.send(StepDone(started, len(ends_at), rss_kib()))
    conn.close()
