"""Clocks for the simulator: the real wall clock, and a manual one that tests move by hand."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    # Naive datetimes are read as UTC, like the exporter reads the API's naive timestamps.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class ManualClock:
    """A clock that only moves when told to, so tests can script time exactly.

    Thread-safe: the simulator's HTTP threads read it while a test advances it.
    """

    def __init__(self, start: datetime | None = None) -> None:
        if start is None:
            # A fixed, round default keeps test output stable across runs.
            start = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)
        self._lock = threading.Lock()
        self._now = _as_utc(start)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by `seconds` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError("a ManualClock only moves forward")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (naive means UTC). Moving backwards is allowed, for odd-clock tests."""
        with self._lock:
            self._now = _as_utc(moment)
