"""The simulator's clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notte_exporter.simulator import Clock, ManualClock, SystemClock


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


def test_manual_clock_moves_only_when_told() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    clock = ManualClock(start)
    assert clock.now() == start
    assert clock.advance(1.5) == start + timedelta(seconds=1.5)
    assert clock.now() == start + timedelta(seconds=1.5)


def test_manual_clock_set_reads_naive_as_utc() -> None:
    clock = ManualClock()
    clock.set(datetime(2026, 6, 1, 12, 0))
    assert clock.now() == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_manual_clock_refuses_to_advance_backwards() -> None:
    with pytest.raises(ValueError, match="forward"):
        ManualClock().advance(-1)


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(), Clock)
