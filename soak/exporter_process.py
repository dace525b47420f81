"""The exporter under soak, in a process of its own, so that its memory is measured alone.

The soak's own process holds the clock, the simulated account, its HTTP server and the
bookkeeping of the truth; this process holds only the exporter. The soak drives it one
command at a time over a pipe: each poll carries the simulated instant, which this process
sets on a ManualClock of its own before polling, so the exporter sees the soak's time as it
would see its own.

A restart replaces the ``Exporter`` inside this same process (counters start again from 0,
as after a deploy), so that the daily memory samples also show whether a stopped exporter
leaves anything behind. With ``trace`` on, tracemalloc follows every allocation from the
start, so a sample can say which of the exporter's files (or the libraries it calls) holds
the memory.

A scrape is read from the exporter's registry (``collect``), the families the exporter
publishes, limited to the sample names the soak keeps: the same values the rendered
``/metrics`` would carry, without rendering and re-parsing them.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from pydantic import SecretStr

from notte_exporter.daemon import Exporter
from notte_exporter.keys import ApiKey
from notte_exporter.settings import Settings
from notte_exporter.simulator import ManualClock

# One scraped sample: its name, labels and value.
Sample = tuple[str, dict[str, str], float]
# (family, label values) of a compared counter, and its amount.
CounterKey = tuple[str, tuple[str, ...]]
# Files listed by a traced memory sample.
_TOP_FILES = 6


@dataclass(frozen=True)
class ExporterSettings:
    """What every exporter the process starts is given (the key comes with each start)."""

    url: str
    poll_interval: float
    counters: dict[str, tuple[str, ...]]
    kept: frozenset[str]
    trace: bool


@dataclass(frozen=True)
class PollReply:
    ok: bool
    pending_ids: list[str]
    samples: list[Sample] | None


@dataclass(frozen=True)
class ExporterMemory:
    """One sample of the exporter process's memory and of the ids its tracker holds."""

    rss_mib: float
    # Python's own allocations still held (tracemalloc), and the files holding the most.
    traced_mib: float | None
    top_files: list[tuple[str, float]]
    live: int
    pending: int
    ended_remembered: int
    # User and system CPU seconds the process has used so far.
    cpu_seconds: float


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _short(filename: str) -> str:
    for marker in ("site-packages/", "notte_exporter/", "python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


class _Driven:
    """This process's side: one exporter at a time, on a clock the soak sets."""

    def __init__(self, settings: ExporterSettings) -> None:
        self.settings = settings
        self.clock = ManualClock()
        self.exporter: Exporter | None = None

    def start(self, key: str) -> None:
        if self.exporter is not None:
            self.exporter.stop(grace=0.1)
        s = self.settings
        settings = Settings(
            notte_api_url=s.url,
            notte_api_key=SecretStr(key),
            poll_interval=s.poll_interval,
            notte_retries=2,
            notte_timeout=5.0,
            collector_usage=True,
        )
        self.exporter = Exporter(
            settings,
            ApiKey(settings.notte_api_key),
            clock=self.clock.now,
            sleep=lambda _: None,
            process_metrics=False,
            usage_clock=lambda: self.clock.now().timestamp(),
        )

    def poll(self, now: datetime, scrape: bool) -> PollReply:
        exporter = self._current()
        self.clock.set(now)
        # The poll and the usage read, as the daemon's loops make them; the soak reads the
        # registry itself rather than the rendered /metrics.
        status = exporter.poller.poll()
        if exporter.usage is not None:
            exporter.usage.poll_if_due()
        samples = None
        if scrape:
            kept = self.settings.kept
            samples = [
                (sample.name, sample.labels, sample.value)
                for family in exporter.registry.collect()
                for sample in family.samples
                if sample.name in kept
            ]
        return PollReply(status.ok, exporter.tracker.pending_ids(), samples)

    def counters(self) -> dict[CounterKey, float]:
        total: dict[CounterKey, float] = defaultdict(float)
        for family in self._current().registry.collect():
            labels = self.settings.counters.get(family.name)
            if labels is None:
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    total[(family.name, tuple(sample.labels[n] for n in labels))] += sample.value
        return dict(total)

    def memory(self) -> ExporterMemory:
        stats = self._current().tracker.stats()
        traced: float | None = None
        top: list[tuple[str, float]] = []
        if tracemalloc.is_tracing():
            snapshot = tracemalloc.take_snapshot()
            by_file = snapshot.statistics("filename")
            traced = sum(stat.size for stat in by_file) / 2**20
            top = [
                (_short(str(stat.traceback[0].filename)), stat.size / 2**20)
                for stat in by_file[:_TOP_FILES]
            ]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return ExporterMemory(
            _rss_mib(),
            traced,
            top,
            stats.live,
            stats.pending,
            stats.ended_remembered,
            usage.ru_utime + usage.ru_stime,
        )

    def _current(self) -> Exporter:
        if self.exporter is None:
            raise RuntimeError("no exporter started")
        return self.exporter


def _serve(connection: Connection, settings: ExporterSettings) -> None:
    # The injected faults make the exporter log a failure a minute; the soak's tables say it.
    logging.disable(logging.WARNING)
    if settings.trace:
        tracemalloc.start()
    driven = _Driven(settings)
    while True:
        command, args = connection.recv()
        if command == "stop":
            if driven.exporter is not None:
                driven.exporter.stop(grace=0.1)
            connection.send(None)
            return
        connection.send(getattr(driven, command)(*args))


class ExporterProcess:
    """The soak's handle on the exporter process: each call is one command and its answer."""

    def __init__(self, settings: ExporterSettings) -> None:
        # spawn, not fork: the soak's process already runs the simulator's server threads.
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, settings), name="soak-exporter", daemon=True
        )
        self._process.start()
        child.close()

    def _call(self, command: str, *args: Any) -> Any:
        self._connection.send((command, args))
        return self._connection.recv()

    def start(self, key: str) -> None:
        """A new exporter (the old one stopped): a deploy, with ``key``."""
        self._call("start", key)

    def poll(self, now: datetime, *, scrape: bool) -> PollReply:
        reply: PollReply = self._call("poll", now, scrape)
        return reply

    def counters(self) -> dict[CounterKey, float]:
        """The current exporter's compared counters, by label set."""
        counters: dict[CounterKey, float] = self._call("counters")
        return counters

    def memory(self) -> ExporterMemory:
        memory: ExporterMemory = self._call("memory")
        return memory

    def close(self) -> None:
        self._call("stop")
        self._process.join(timeout=30)
        self._connection.close()
