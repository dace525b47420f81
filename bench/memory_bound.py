"""Memory bound: churn many sessions through the account and watch the exporter's memory.

Every poll a new cohort of sessions starts (with traffic) and earlier ones end (stopped,
failed, or left to be found gone), while the clock moves on by ``step``. The exporter
remembers the ids of counted ends for ``DEFAULT_HORIZON`` (so nothing is counted twice),
and ``step`` is chosen so the horizon is crossed an eighth of the way through: from there
on memory must stay flat however many more sessions pass. Reported as the ratio of the last
sample's memory to the first sample past warm-up (see ``_plateau``), next to the ratio of
sessions that passed in between.

The simulated account runs in a child process (``serve_churn``, driven through a pipe, one
``Step`` per poll, with an identical ``ManualClock`` of its own), so ``tracemalloc`` in this
process sees the exporter (and the few bytes of this driver) and nothing of the simulator,
which also gets the second core.

A second, direct measurement feeds ended sessions to a ``LifecycleTracker`` whose clock
stands still, so age never forgets anything and only the ``max_ended`` cap can bound
memory; it runs with a smaller cap than the default (the mechanism is the same) and reports
bytes per remembered end, from which the default cap's worst case follows.
"""

from __future__ import annotations

import gc
import multiprocessing
import random
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from prometheus_client import CollectorRegistry

from notte_exporter.api.models import InvalidItem, parse_session
from notte_exporter.daemon import Exporter
from notte_exporter.labels import BROWSER_TYPES, BoundedLabel
from notte_exporter.polling.lifecycle import (
    DEFAULT_HORIZON,
    DEFAULT_MAX_ENDED,
    LifecycleMetrics,
    LifecycleTracker,
)
from notte_exporter.simulator import BROWSER_TYPES as SIMULATED_BROWSERS
from notte_exporter.simulator import ManualClock, SimulatedAccount, SimulatorServer

from .fixtures import KEY, make_exporter
from .timing import ratio

_KIB = 1024
_CHILD_TIMEOUT_S = 60.0
# Far enough from the fleet phases' clock that nothing could be confused between them.
_START = datetime(2026, 6, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Step:
    """End the sessions due at ``poll``, start ``start`` new ones, move the clock on."""

    poll: int
    start: int
    advance_seconds: float


def serve_churn(conn: Connection, start: datetime, seed: int) -> None:
    """Child process: serve the account over loopback HTTP and apply steps until told to stop.

    Answers each step with the number of sessions started so far.
    """
    clock = ManualClock(start)
    # Server-side timeouts are off: sessions end when the script ends them.
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
                    browser_type=rng.choice(SIMULATED_BROWSERS), proxies=rng.random() < 0.3
                )
                ends_at[sid] = step.poll + rng.choice((1, 1, 2, 3))
            started += step.start
            clock.advance(step.advance_seconds)
            conn.send(started)
    conn.close()


def _closed_by_status(exporter: Exporter) -> dict[str, int]:
    totals: dict[str, int] = {}
    for family in exporter.registry.collect():
        if family.name != "notte_sessions_closed":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                status = sample.labels["status"]
                totals[status] = totals.get(status, 0) + int(sample.value)
    return totals


def _receive(conn: Connection, child: BaseProcess) -> object:
    """The child's next message; fails fast if the child died instead of answering."""
    deadline = time.monotonic() + _CHILD_TIMEOUT_S
    while not conn.poll(0.2):
        if not child.is_alive():
            raise RuntimeError(f"the simulator process exited with code {child.exitcode}")
        if time.monotonic() > deadline:
            raise TimeoutError("the simulator process stopped answering")
    return conn.recv()


def churn(polls: int, churn_per_poll: int, samples: int, seed: int) -> dict[str, Any]:
    step = DEFAULT_HORIZON.total_seconds() / max(polls / 8, 1)
    sample_every = max(polls // samples, 1)
    rows: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")  # no inherited threads, no shared heap
    conn, child_conn = context.Pipe()
    child = context.Process(
        target=serve_churn, args=(child_conn, _START, seed), name="bench-simulator"
    )
    child.start()
    try:
        url = _receive(conn, child)
        assert isinstance(url, str)
        clock = ManualClock(_START)
        tracemalloc.start(1)
        exporter = make_exporter(clock, api_url=url)
        for poll in range(1, polls + 1):
            conn.send(Step(poll, churn_per_poll, step))
            started = _receive(conn, child)
            assert isinstance(started, int)
            clock.advance(step)
            status = exporter.poll_once()
            assert status.ok, f"poll {poll} failed: {status.message}"
            if poll % sample_every == 0 or poll == polls:
                gc.collect()
                current, peak = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                stats = exporter.tracker.stats()
                rows.append(
                    {
                        "poll": poll,
                        "sessions_started": started,
                        "hours": round(poll * step / 3600, 1),
                        "live": stats.live,
                        "pending": stats.pending,
                        "ended_remembered": stats.ended_remembered,
                        "exporter_kib": round(current / _KIB, 1),
                        "exporter_peak_kib": round(peak / _KIB, 1),
                    }
                )
        tracemalloc.stop()
        closed = _closed_by_status(exporter)
        exporter.close()
        conn.send(None)
    finally:
        tracemalloc.stop()
        child.join(timeout=_CHILD_TIMEOUT_S)
        if child.is_alive():
            child.terminate()
            child.join()
    return {
        "polls": polls,
        "churn_per_poll": churn_per_poll,
        "step_seconds": round(step, 1),
        "horizon_hours": DEFAULT_HORIZON.total_seconds() / 3600,
        "sessions_started": rows[-1]["sessions_started"],
        "closed_by_status": closed,
        "rows": rows,
        "summary": _plateau(rows, "exporter_kib"),
    }


def _plateau(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Compare the last sample with the first one past warm-up.

    Warm-up is three times the horizon crossing (3/8 of the run): by then the first ids
    have been forgotten, the first pending sessions given up on, and the dictionaries have
    grown to the size they keep.
    """
    early = next(row for row in rows if row["poll"] >= rows[-1]["poll"] * 3 / 8)
    late = rows[-1]
    return {
        "early_poll": early["poll"],
        "late_poll": late["poll"],
        "sessions_ratio": ratio(late["sessions_started"], early["sessions_started"]),
        "memory_ratio": ratio(late[key], early[key]),
        "ended_remembered_ratio": ratio(late["ended_remembered"], early["ended_remembered"]),
    }


def ended_cap(ends: int, max_ended: int, samples: int) -> dict[str, Any]:
    """Feed ``ends`` ended sessions to a tracker that never ages anything out."""
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    tracker = LifecycleTracker(
        LifecycleMetrics(CollectorRegistry(), BROWSER_TYPES),
        BoundedLabel(BROWSER_TYPES),
        watch_start=now - timedelta(hours=1),
        max_ended=max_ended,
    )
    sample_every = max(ends // samples, 1)
    rows: list[dict[str, Any]] = []
    tracemalloc.start(1)
    try:
        base = tracemalloc.get_traced_memory()[0]
        for index in range(1, ends + 1):
            session = parse_session(
                {
                    "session_id": f"{index:032x}",
                    "status": "closed",
                    "close_reason": "manual",
                    "created_at": now - timedelta(minutes=5),
                    "closed_at": now,
                    "browser_type": BROWSER_TYPES[index % len(BROWSER_TYPES)],
                    "network_request_bytes": 1000,
                    "network_response_bytes": 100_000,
                }
            )
            assert not isinstance(session, InvalidItem), session
            tracker.observe_final(session, now)
            del session
            if index % sample_every == 0:
                gc.collect()
                rows.append(
                    {
                        "ends_fed": index,
                        "ended_remembered": tracker.stats().ended_remembered,
                        "kib": round((tracemalloc.get_traced_memory()[0] - base) / _KIB, 1),
                    }
                )
    finally:
        tracemalloc.stop()
    half = next(row for row in rows if row["ends_fed"] >= max_ended)
    per_end = round(half["kib"] * _KIB / max(half["ended_remembered"], 1))
    return {
        "ends_fed": ends,
        "max_ended": max_ended,
        "default_max_ended": DEFAULT_MAX_ENDED,
        "rows": rows,
        "summary": {
            "cap_sample": half["ends_fed"],
            "ends_ratio": ratio(rows[-1]["ends_fed"], half["ends_fed"]),
            "memory_ratio": ratio(rows[-1]["kib"], half["kib"]),
            "bytes_per_remembered_end": per_end,
            "default_cap_estimate_mib": round(per_end * DEFAULT_MAX_ENDED / _KIB / _KIB, 1),
        },
    }


def tables(
    memory: dict[str, Any], cap: dict[str, Any]
) -> list[tuple[str, list[str], list[list[object]]]]:
    summary, capped = memory["summary"], cap["summary"]
    return [
        (
            f"Memory under churn: {memory['churn_per_poll']} new sessions per poll, clock "
            f"+{memory['step_seconds']} s per poll (horizon {memory['horizon_hours']} h); poll "
            f"{summary['late_poll']} against poll {summary['early_poll']}: sessions "
            f"x{summary['sessions_ratio']}, exporter memory x{summary['memory_ratio']}; ends "
            f"by status {memory['closed_by_status']}",
            ["poll", "started", "hours", "live", "pending", "ended kept", "KiB", "peak KiB"],
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
                ]
                for r in memory["rows"]
            ],
        ),
        (
            f"Ended-id cap (max_ended {cap['max_ended']}, the clock standing still): after the "
            f"cap, ends x{capped['ends_ratio']}, memory x{capped['memory_ratio']}; about "
            f"{capped['bytes_per_remembered_end']} bytes per remembered end, so about "
            f"{capped['default_cap_estimate_mib']} MiB at the default cap of "
            f"{cap['default_max_ended']}",
            ["ends fed", "ended kept", "KiB"],
            [[r["ends_fed"], r["ended_remembered"], r["kib"]] for r in cap["rows"]],
        ),
    ]
