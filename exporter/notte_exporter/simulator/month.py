"""A month of an account's life, scripted on a ManualClock: load, leaks, outages, and the truth.

``MonthLoad`` drives a ``SimulatedAccount`` (built with ``profile=None``) through scripted
control only, one ``step`` at a time, and keeps the ground truth of everything that happened:
every start, every end with its final state, every byte. ``month_plan`` places the injected
episodes (leaks, error bursts, restarts, a key rotation, an outage) over any number of days,
the same way for the same start, so that a one-day run and a month share one description.
``MonthFaults`` is a ``FaultQueue`` that fails a share of the requests at random (seeded) and
every request during an outage.

Invariants: the truth counts a session's end once, from the account's own final state; a
session's bytes change only in ``step``, so that the totals at any poll are what the account
rendered then; nothing here reads the exporter.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from .account import BROWSER_TYPES, SimulatedAccount
from .faults import Fault, FaultQueue

__all__ = [
    "EndRecord",
    "Episode",
    "EpisodeKind",
    "MonthFaults",
    "MonthLoad",
    "Truth",
    "month_plan",
]

EpisodeKind = Literal["leak", "error_burst", "restart", "key_rotation", "outage"]

_BROWSER_WEIGHTS: Final = (60, 20, 12, 5, 3)
LEAK_LENGTH: Final = timedelta(hours=2)
OUTAGE_LENGTH: Final = timedelta(hours=1)
ERROR_BURST_LENGTH: Final = timedelta(minutes=30)
# How long the exporter keeps the old key after a rotation, failing with 401, until redeployed.
ROTATION_LAG: Final = timedelta(minutes=10)


@dataclass(frozen=True)
class Episode:
    """Something injected into the month, from ``start`` to ``end`` (equal for an instant)."""

    kind: EpisodeKind
    start: datetime
    end: datetime

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


# (day, hour, kind) of each episode, by day of the run; days past the run are left out.
_SCHEDULE: Final[tuple[tuple[int, float, EpisodeKind], ...]] = (
    (0, 14.0, "leak"),
    (0, 15.0, "restart"),  # during the leak
    (0, 20.0, "error_burst"),
    (2, 9.5, "restart"),
    (4, 3.0, "leak"),  # a night leak: little traffic around it
    (6, 11.0, "key_rotation"),
    (9, 2.0, "outage"),
    (11, 16.0, "leak"),
    (13, 10.0, "error_burst"),
    (16, 9.0, "restart"),
    (19, 13.0, "leak"),
    (22, 17.0, "error_burst"),
    (25, 10.0, "leak"),
    (25, 11.0, "restart"),  # during the leak, again
    (28, 8.0, "restart"),
)

_LENGTHS: Final[dict[EpisodeKind, timedelta]] = {
    "leak": LEAK_LENGTH,
    "error_burst": ERROR_BURST_LENGTH,
    "restart": timedelta(0),
    "key_rotation": ROTATION_LAG,
    "outage": OUTAGE_LENGTH,
}


def month_plan(start: datetime, days: int) -> tuple[Episode, ...]:
    """The episodes of a run of ``days`` days from ``start`` (midnight of its first day)."""
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    episodes = []
    for day, hour, kind in _SCHEDULE:
        if day < days:
            begin = midnight + timedelta(days=day, hours=hour)
            episodes.append(Episode(kind, begin, begin + _LENGTHS[kind]))
    return tuple(episodes)


def _arrivals_per_minute(moment: datetime) -> float:
    """Weekday days busy, nights and weekends quiet."""
    daytime = 8 <= moment.hour < 20
    rate = 1.5 if daytime else 0.3
    return rate * (0.4 if moment.weekday() >= 5 else 1.0)


@dataclass(frozen=True)
class EndRecord:
    """A session's final state, as the account rendered it once it ended."""

    browser_type: str
    proxy: bool
    status: str
    close_reason: str
    created_at: datetime
    closed_at: datetime
    last_accessed_at: datetime
    request_bytes: int
    response_bytes: int


@dataclass
class Truth:
    """What really happened: the ground truth the exporter's counters are compared with."""

    starts: Counter[str] = field(default_factory=Counter)
    ends: dict[str, EndRecord] = field(default_factory=dict)


@dataclass
class _Live:
    browser_type: str
    stop_at: datetime | None
    fail: bool
    # No access after this (the client walked away): the idle timeout closes it.
    abandon_at: datetime | None


def _parse(moment: Any) -> datetime:
    return datetime.fromisoformat(str(moment).replace("Z", "+00:00"))


class MonthLoad:
    """Drives the account: arrivals by the load shape, accesses, stops, and the episodes."""

    def __init__(
        self, account: SimulatedAccount, episodes: tuple[Episode, ...], *, seed: int = 23
    ) -> None:
        self.account = account
        self.episodes = episodes
        self.truth = Truth()
        self._rng = random.Random(f"notte-month:{seed}")
        self._live: dict[str, _Live] = {}
        self._leaks = [e for e in episodes if e.kind == "leak"]
        self._bursts = [e for e in episodes if e.kind == "error_burst"]

    def step(self, seconds: float) -> None:
        """Act at the clock's time for the ``seconds`` that follow: start, use, stop sessions.

        Then record the ends the account reports (its own timeouts included).
        """
        self.record_ends()  # the account's timeouts since the last step
        now = self.account.now()
        rng = self._rng
        leaking = any(e.covers(now) for e in self._leaks)
        bursting = any(e.covers(now) for e in self._bursts)
        expected = _arrivals_per_minute(now) * seconds / 60.0
        arrivals = self._poisson(expected)
        # A leak is one more client that starts sessions and never stops them.
        leaked = self._poisson(1.0 * seconds / 60.0) if leaking else 0
        for index in range(arrivals + leaked):
            self._arrive(now, leak=index >= arrivals, burst=bursting)
        for key, plan in list(self._live.items()):
            if plan.stop_at is not None and now >= plan.stop_at:
                if plan.fail:
                    self.account.fail(key, error="Browser crashed unexpectedly")
                else:
                    self.account.stop(key)
                continue
            if plan.abandon_at is None or now < plan.abandon_at:
                self.account.access(key, rng.randint(2_000, 60_000), rng.randint(20_000, 900_000))
        self.record_ends()

    def record_ends(self) -> None:
        """Take the final state of every session the account no longer lists as live."""
        live = set(self.account.session_ids(only_active=True))
        for key in [k for k in self._live if k not in live]:
            del self._live[key]
            body = self.account.session(key)
            self.truth.ends[key] = EndRecord(
                browser_type=body["browser_type"],
                proxy=body["proxies"] is True,
                status=body["status"],
                close_reason=body["close_reason"],
                created_at=_parse(body["created_at"]),
                closed_at=_parse(body["closed_at"]),
                last_accessed_at=_parse(body["last_accessed_at"]),
                request_bytes=body["network_request_bytes"],
                response_bytes=body["network_response_bytes"],
            )

    def live_totals(self) -> dict[str, tuple[str, bool, datetime, int, int]]:
        """Each live session's browser type, proxy, start and byte totals, now."""
        return {
            body["session_id"]: (
                body["browser_type"],
                body["proxies"] is True,
                _parse(body["created_at"]),
                body["network_request_bytes"],
                body["network_response_bytes"],
            )
            for body in self.account.sessions(only_active=True)
        }

    def _poisson(self, mean: float) -> int:
        # Knuth's method: means here are a few per step at most.
        limit = pow(2.718281828459045, -mean)
        count, product = 0, self._rng.random()
        while product > limit:
            count += 1
            product *= self._rng.random()
        return count

    def _arrive(self, now: datetime, *, leak: bool, burst: bool) -> None:
        rng = self._rng
        browser = rng.choices(BROWSER_TYPES, _BROWSER_WEIGHTS)[0]
        idle = 10 if leak else rng.choice((3, 5, 10))
        longest = rng.choice((15, 30, 60))
        key = self.account.start_session(
            browser_type=browser,
            proxies=rng.random() < 0.3,
            idle_timeout_minutes=idle,
            max_duration_minutes=longest,
        )
        self.truth.starts[browser] += 1
        if leak:
            plan = _Live(browser, None, False, now + timedelta(seconds=rng.uniform(10, 120)))
        elif rng.random() < (0.6 if burst else 0.03):
            plan = _Live(browser, now + timedelta(seconds=rng.uniform(10, 300)), True, None)
        elif rng.random() < 0.03:
            # Even a careful client forgets one now and then: the idle timeout closes it.
            plan = _Live(browser, None, False, now + timedelta(seconds=rng.uniform(10, 120)))
        elif rng.random() < 0.05:
            # Now and then a session outlives its max duration: the platform closes it.
            plan = _Live(browser, None, False, None)
        else:
            lifetime = rng.uniform(20, min(600, longest * 60 - 60))
            plan = _Live(browser, now + timedelta(seconds=lifetime), False, None)
        self._live[key] = plan


class MonthFaults(FaultQueue):
    """Fails ``share`` of the requests at random, and every request while ``down`` says so.

    Queued faults (``push``) still come first, so tests can add their own.
    """

    _KINDS: Final = (500, 502, 503, 529, 429)

    def __init__(self, share: float, down: Callable[[], bool], *, seed: int = 23) -> None:
        super().__init__()
        self._share = share
        self._down = down
        self._rng = random.Random(f"notte-month-faults:{seed}")
        self.served = 0
        self.failed = 0

    def take(self, path: str, key: str | None = None) -> Fault | None:
        queued = super().take(path, key)
        if queued is not None:
            return queued
        self.served += 1
        if self._down():
            self.failed += 1
            return Fault.status(503)
        if self._rng.random() < self._share:
            self.failed += 1
            return Fault.status(self._rng.choice(self._KINDS))
        return None
