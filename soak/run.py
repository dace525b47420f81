"""One soak run: the exporter polls a simulated account through a whole scripted month.

Everything runs on one simulated clock: the account (``simulator.month``) and the
simulator's HTTP server on loopback (with ``MonthFaults``) on a ManualClock here, and the
exporter in a process of its own (``exporter_process``), polling every ``POLL_INTERVAL``
simulated seconds at the instant the soak gives it, as its poll loop would. A restart is a
new ``Exporter`` on the same account: its counters start again from zero, so each
instance's final counter values are added up, as ``increase()`` reads a counter across resets.

A restart loses what falls in its gap, from the old instance's last complete listing to the
new one's first: the ends of sessions that stopped then, the bytes they moved then, and the
starts of sessions begun then, before the new instance's watch began. Each gap's loss is
worked out from the account's own states at both ends (``GapLoss``), so that the comparison
can demand the rest be exact.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from notte_exporter.simulator import PLANS, ManualClock, SimulatedAccount, SimulatorServer
from notte_exporter.simulator.month import (
    EndRecord,
    Episode,
    MonthFaults,
    MonthLoad,
    month_plan,
)

from .exporter_process import CounterKey, ExporterMemory, ExporterProcess, ExporterSettings
from .scrapes import ScrapeWriter, kept_names

# Production's default is 30 s; two minutes keeps the month within minutes of wall time on a
# small machine and still suits every rule's windows (the shortest, a 5m `for`, sees 2-3
# scrapes; Prometheus's 5m lookback bridges them).
POLL_INTERVAL = 120.0
# The load acts every minute whatever the poll interval (sessions are used as often, and idle
# timeouts mean the same), between polls, so that no session starts at a poll's instant.
_LOAD_STEP = 60.0
_ACT_AT = 10.0
# A month that crosses a month boundary (usage resets) and starts on a Monday.
DEFAULT_START = datetime(2026, 6, 15, tzinfo=UTC)
FAULT_SHARE = 0.2
_KEYS = ("sk-soak-first-4d2a9c", "sk-soak-rotated-8e1f07")

# (family, label names) of the counters compared with the truth.
COUNTERS: dict[str, tuple[str, ...]] = {
    "notte_sessions_started": ("browser_type",),
    "notte_sessions_closed": ("browser_type", "status", "close_reason"),
    "notte_network_request_bytes": ("browser_type", "proxy"),
    "notte_network_response_bytes": ("browser_type", "proxy"),
    "notte_sessions_browser_seconds": ("browser_type",),
    "notte_sessions_idle_seconds": ("browser_type", "close_reason"),
}

Key = tuple[str, tuple[str, ...]]
# An amount per counter and label set: counts, bytes or seconds.
Tally = defaultdict[Key, float]
LiveTotals = dict[str, tuple[str, bool, datetime, int, int]]


@dataclass
class MemorySample:
    """The exporter process's memory at the end of a simulated day."""

    day: int
    exporter: ExporterMemory


@dataclass(frozen=True)
class EndsCounted:
    """At a scrape, the ends the exporter had counted so far, across restarts as
    ``increase()`` reads them: those closed by idle timeout, and those with a known reason."""

    at: datetime
    idle_timeouts: float
    known: float


@dataclass
class Gap:
    """A restart's gap: the old instance's last complete listing, and the new one's start."""

    listed_at: datetime
    watch_from: datetime
    # What the old instance last saw of each session it still followed (live or pending).
    seen: LiveTotals


@dataclass
class RunResult:
    start: datetime
    end: datetime
    episodes: tuple[Episode, ...]
    measured: Tally
    truth: Tally
    gap_loss: Tally
    memory: list[MemorySample]
    polls: int
    failed_polls: int
    restarts: int
    requests: int
    failed_requests: int
    scrape_file: str | None = None
    ends_counted: list[EndsCounted] = field(default_factory=list)


def _add_counters(total: Tally, counters: Mapping[CounterKey, float]) -> None:
    for key, value in counters.items():
        total[key] += value


class Soak:
    """The run's state; ``run`` drives it from start to end."""

    def __init__(
        self,
        days: float,
        *,
        start: datetime = DEFAULT_START,
        seed: int = 23,
        poll_interval: float = POLL_INTERVAL,
        scrape_path: str | None = None,
        on_scrapes: Callable[[Path], None] | None = None,
        trace_memory: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if poll_interval % _LOAD_STEP:
            raise ValueError(f"the poll interval must be a multiple of {_LOAD_STEP:.0f} s")
        self.poll_interval = poll_interval
        self._load_steps = int(poll_interval // _LOAD_STEP)
        self.clock = ManualClock(start)
        self.start = start
        self.end = start + timedelta(days=days)
        # A plan the month's load fits in (with its leaks): any cost alert would be false.
        self.account = SimulatedAccount(
            clock=self.clock, profile=None, history_limit=500, usage_plan=PLANS["steady"]
        )
        # Only what begins within the run: a fraction of a day gets that fraction's episodes.
        self.episodes = tuple(e for e in month_plan(start, math.ceil(days)) if e.start < self.end)
        self.load = MonthLoad(self.account, self.episodes, seed=seed)
        self.faults = MonthFaults(FAULT_SHARE, self._in_outage, seed=seed)
        self.scrapes = ScrapeWriter(scrape_path, on_chunk=on_scrapes) if scrape_path else None
        self.trace_memory = trace_memory
        self.progress = progress or (lambda _: None)
        self.measured: Tally = defaultdict(float)
        self.gap_loss: Tally = defaultdict(float)
        self.truth: Tally = defaultdict(float)
        # Sessions that lived through a restart, and when the new instance began watching them.
        self._clipped: dict[str, datetime] = {}
        self.memory: list[MemorySample] = []
        self.polls = 0
        self.failed_polls = 0
        self.restarts = 0
        self.ends_counted: list[EndsCounted] = []
        # What the instances before the current one counted (idle timeouts, known ends).
        self._ends_before = (0.0, 0.0)
        self._key = _KEYS[0]
        self._last_ok: datetime | None = None
        self._seen: LiveTotals = {}
        self._gap: Gap | None = None

    def _in_outage(self) -> bool:
        now = self.clock.now()
        return any(e.kind == "outage" and e.covers(now) for e in self.episodes)

    def run(self) -> RunResult:
        with SimulatorServer(self.account, api_key=self._key, rate_limit=None) as server:
            server.faults = self.faults
            exporter = ExporterProcess(
                ExporterSettings(
                    url=server.url,
                    poll_interval=self.poll_interval,
                    counters=COUNTERS,
                    kept=kept_names(),
                    trace=self.trace_memory,
                )
            )
            exporter.start(self._key)
            pending = sorted(
                (e for e in self.episodes if e.kind in ("restart", "key_rotation")),
                key=lambda e: e.start,
            )
            next_day = self.start
            while self.clock.now() < self.end:
                for _ in range(self._load_steps):
                    self.clock.advance(_ACT_AT)
                    self.load.step(_LOAD_STEP)
                    self.clock.advance(_LOAD_STEP - _ACT_AT)
                self.load.record_ends()
                now = self.clock.now()
                self._poll(exporter, now)
                if (
                    pending
                    and now >= pending[0].start
                    and self._episode(server, exporter, pending[0], now)
                ):
                    pending.pop(0)
                if now >= next_day:
                    # Ends older than any gap accounting still needs.
                    self._fold_ends(now - timedelta(days=1))
                    self._sample_memory(exporter, now)
                    next_day += timedelta(days=1)
            _add_counters(self.measured, exporter.counters())
            self._sample_memory(exporter, self.clock.now())
            exporter.close()
        if self.scrapes is not None:
            self.scrapes.close()
        return RunResult(
            start=self.start,
            end=self.clock.now(),
            episodes=self.episodes,
            measured=self.measured,
            truth=self._truth(),
            gap_loss=self.gap_loss,
            memory=self.memory,
            polls=self.polls,
            failed_polls=self.failed_polls,
            restarts=self.restarts,
            requests=self.faults.served,
            failed_requests=self.faults.failed,
            scrape_file=self.scrapes.path if self.scrapes else None,
            ends_counted=self.ends_counted,
        )

    def _poll(self, exporter: ExporterProcess, now: datetime) -> None:
        reply = exporter.poll(now, scrape=self.scrapes is not None)
        if self.scrapes is not None and reply.samples is not None:
            self.scrapes.write(reply.samples, now)
            idle, known = _ends(
                (labels["close_reason"], value)
                for name, labels, value in reply.samples
                if name == "notte_sessions_closed_total"
            )
            before_idle, before_known = self._ends_before
            self.ends_counted.append(EndsCounted(now, before_idle + idle, before_known + known))
        self.polls += 1
        if not reply.ok:
            self.failed_polls += 1
            return
        live = self.load.live_totals()
        if self._gap is not None:
            self._count_gap(self._gap, live)
            self._gap = None
        self._last_ok = now
        pending = set(reply.pending_ids)
        self._seen = {k: v for k, v in self._seen.items() if k in pending}
        self._seen.update(live)

    def _episode(
        self, server: SimulatorServer, exporter: ExporterProcess, episode: Episode, now: datetime
    ) -> bool:
        """Act on a restart or a key rotation; True once it is done."""
        if episode.kind == "key_rotation":
            if server.api_key != _KEYS[1]:
                server.api_key = _KEYS[1]  # the old key stops working now
            if now < episode.end:
                return False
            self._key = _KEYS[1]
        elif self._last_ok != now:
            return False  # a deploy waits for a healthy instance to replace
        self._restart(exporter, now)
        return True

    def _restart(self, exporter: ExporterProcess, now: datetime) -> None:
        counters = exporter.counters()
        _add_counters(self.measured, counters)
        idle, known = _ends(
            (labels[2], value)
            for (family, labels), value in counters.items()
            if family == "notte_sessions_closed"
        )
        self._ends_before = (self._ends_before[0] + idle, self._ends_before[1] + known)
        assert self._last_ok is not None
        self._gap = Gap(self._last_ok, now, dict(self._seen))
        exporter.start(self._key)
        self.restarts += 1
        self.progress(f"{now:%Y-%m-%d %H:%M} restart #{self.restarts}")

    def _count_gap(self, gap: Gap, live: LiveTotals) -> None:
        """What the gap lost, now that the new instance has its first complete listing."""
        ends = self.load.truth.ends
        for key, (browser, proxy, created, sent, received) in gap.seen.items():
            if key in live:
                _, _, _, sent_now, received_now = live[key]
                self._lose_bytes(browser, proxy, sent_now - sent, received_now - received)
                self._lose("notte_sessions_browser_seconds", (browser,), _seconds(gap))
                self._clipped[key] = gap.watch_from
            elif key in ends:
                end = ends[key]
                self._lose_end(end, sent, received, max(gap.listed_at, created))
        for key, end in ends.items():
            if gap.listed_at < end.created_at <= gap.watch_from and key not in gap.seen:
                self._lose("notte_sessions_started", (end.browser_type,), 1)
                if end.closed_at <= self.clock.now():
                    self._lose_end(end, 0, 0, end.created_at)
        for browser, proxy, created, sent, received in live.values():
            if gap.listed_at < created <= gap.watch_from:
                self._lose("notte_sessions_started", (browser,), 1)
                self._lose_bytes(browser, proxy, sent, received)

    def _lose_end(self, end: EndRecord, sent: int, received: int, counted_until: datetime) -> None:
        self._lose("notte_sessions_closed", (end.browser_type, end.status, end.close_reason), 1)
        self._lose_bytes(
            end.browser_type, end.proxy, end.request_bytes - sent, end.response_bytes - received
        )
        seconds = max((end.closed_at - counted_until).total_seconds(), 0.0)
        self._lose("notte_sessions_browser_seconds", (end.browser_type,), seconds)
        self._lose(
            "notte_sessions_idle_seconds",
            (end.browser_type, end.close_reason),
            _idle(end, end.created_at),
        )

    def _lose_bytes(self, browser: str, proxy: bool, sent: int, received: int) -> None:
        label = (browser, "true" if proxy else "false")
        self._lose("notte_network_request_bytes", label, sent)
        self._lose("notte_network_response_bytes", label, received)

    def _lose(self, family: str, labels: tuple[str, ...], amount: float) -> None:
        if amount:
            self.gap_loss[(family, labels)] += amount

    def _fold_ends(self, before: datetime) -> None:
        """Add the ends closed before ``before`` to the truth, and forget them (flat memory)."""
        ends = self.load.truth.ends
        for key in [k for k, end in ends.items() if end.closed_at < before]:
            end = ends.pop(key)
            self._count_end(end)
            watch_from = self._clipped.pop(key, None)
            if watch_from is not None:
                # Its idle time before the new instance's watch was never counted by anyone.
                lost = _idle(end, end.created_at) - _idle(end, watch_from)
                self._lose(
                    "notte_sessions_idle_seconds", (end.browser_type, end.close_reason), lost
                )

    def _count_end(self, end: EndRecord) -> None:
        truth = self.truth
        truth[("notte_sessions_closed", (end.browser_type, end.status, end.close_reason))] += 1
        label = (end.browser_type, "true" if end.proxy else "false")
        truth[("notte_network_request_bytes", label)] += end.request_bytes
        truth[("notte_network_response_bytes", label)] += end.response_bytes
        seconds = (end.closed_at - end.created_at).total_seconds()
        truth[("notte_sessions_browser_seconds", (end.browser_type,))] += seconds
        truth[("notte_sessions_idle_seconds", (end.browser_type, end.close_reason))] += _idle(
            end, end.created_at
        )

    def _truth(self) -> Tally:
        """The whole truth at the end of the run: every start, end, byte and second."""
        now = self.clock.now()
        self._fold_ends(now + timedelta(days=1))
        truth = self.truth
        for browser, count in self.load.truth.starts.items():
            truth[("notte_sessions_started", (browser,))] += count
        for browser, proxy, created, sent, received in self.load.live_totals().values():
            label = (browser, "true" if proxy else "false")
            truth[("notte_network_request_bytes", label)] += sent
            truth[("notte_network_response_bytes", label)] += received
            truth[("notte_sessions_browser_seconds", (browser,))] += (now - created).total_seconds()
        return truth

    def _sample_memory(self, exporter: ExporterProcess, now: datetime) -> None:
        memory = exporter.memory()
        day = int((now - self.start) / timedelta(days=1))
        if self.memory and self.memory[-1].day == day:
            self.memory.pop()  # the run ended at a midnight: one sample for it
        self.memory.append(MemorySample(day, memory))
        self.progress(
            f"{now:%Y-%m-%d %H:%M} day {day}: polls {self.polls} "
            f"({self.failed_polls} failed), exporter rss {memory.rss_mib:.1f} MiB, "
            f"remembered ends {memory.ended_remembered}"
        )


def _ends(by_reason: Iterable[tuple[str, float]]) -> tuple[float, float]:
    """Ends closed by idle timeout, and ends with a known close reason."""
    idle = known = 0.0
    for reason, value in by_reason:
        if reason != "unknown":
            known += value
            if reason == "idle_timeout":
                idle += value
    return idle, known


def _seconds(gap: Gap) -> float:
    return (gap.watch_from - gap.listed_at).total_seconds()


def _idle(end: EndRecord, watched_from: datetime) -> float:
    since = max(end.last_accessed_at, watched_from)
    return max((end.closed_at - since).total_seconds(), 0.0)
