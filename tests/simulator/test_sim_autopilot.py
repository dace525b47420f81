"""The autopilot profiles: a living account, deterministic from its seed."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from notte_exporter.simulator import ManualClock, SimulatedAccount, SimulatorServer

START = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _run(
    profile: Literal["steady", "leak"],
    seed: int,
    *,
    speed: float = 1.0,
    steps: int = 240,
    step_s: float = 30.0,
) -> tuple[SimulatedAccount, list[int]]:
    """Run the autopilot with a reading every `step_s` simulated seconds."""
    clock = ManualClock(START)
    account = SimulatedAccount(clock=clock, seed=seed, profile=profile, speed=speed)
    live_counts = []
    for _ in range(steps):
        clock.advance(step_s / speed)
        live_counts.append(len(account.sessions()))
    return account, live_counts


def _history(account: SimulatedAccount) -> list[dict[str, Any]]:
    return account.sessions(only_active=False, include_system=True)


def test_same_seed_and_clock_readings_give_identical_json() -> None:
    first, _ = _run("steady", seed=3)
    second, _ = _run("steady", seed=3)
    assert json.dumps(_history(first)) == json.dumps(_history(second))


def test_different_seeds_give_different_accounts() -> None:
    first, _ = _run("steady", seed=3, steps=20)
    second, _ = _run("steady", seed=4, steps=20)
    assert json.dumps(_history(first)) != json.dumps(_history(second))


def test_same_seed_serves_identical_pages_over_http() -> None:
    bodies = []
    for _ in range(2):
        clock = ManualClock(START)
        account = SimulatedAccount(clock=clock, seed=5, profile="leak")
        with SimulatorServer(account, api_key="k") as server:
            clock.advance(600)
            response = httpx.get(
                f"{server.url}/sessions",
                params={"only_active": "false", "page_size": 100},
                headers={"Authorization": "Bearer k"},
            )
        bodies.append(response.content)
    assert bodies[0] == bodies[1]


def test_account_starts_populated() -> None:
    account = SimulatedAccount(clock=ManualClock(START), seed=1, profile="steady")
    assert account.sessions()
    assert len(_history(account)) > len(account.sessions())


def test_steady_keeps_a_handful_of_sessions_of_mixed_kinds() -> None:
    account, live_counts = _run("steady", seed=1)
    history = _history(account)
    endings = Counter(s["close_reason"] for s in history if s["status"] != "active")
    browsers = Counter(s["browser_type"] for s in history)
    assert min(live_counts) >= 1
    assert max(live_counts) <= 25
    assert 3 <= sum(live_counts) / len(live_counts) <= 12
    assert endings.most_common(1)[0][0] == "manual"
    assert endings["idle_timeout"] > 0
    assert endings["error"] > 0
    assert browsers.most_common(1)[0][0] == "chromium"
    assert len(browsers) >= 3
    for feature in ("proxies", "use_file_storage", "web_bot_auth"):
        assert any(s[feature] for s in history), feature
    assert any(s["headless"] is False for s in history)
    assert any(s["solve_captchas"] for s in history)


def test_steady_sessions_transfer_bytes_while_live() -> None:
    clock = ManualClock(START)
    account = SimulatedAccount(clock=clock, seed=1, profile="steady")
    before = {s["session_id"]: s["network_response_bytes"] for s in account.sessions()}
    clock.advance(60)
    after = {s["session_id"]: s["network_response_bytes"] for s in account.sessions()}
    still_live = before.keys() & after.keys()
    assert still_live
    assert all(after[key] >= before[key] for key in still_live)
    assert any(after[key] > before[key] for key in still_live)


def test_closed_sessions_are_self_consistent() -> None:
    account, _ = _run("leak", seed=2, speed=30)
    for session in _history(account):
        if session["status"] == "active":
            continue
        created, closed = _parse(session["created_at"]), _parse(session["closed_at"])
        assert created <= closed
        assert _parse(session["last_accessed_at"]) <= closed
        if session["close_reason"] == "idle_timeout":
            # At speed 30 an idle timeout of N minutes lasts N*2 seconds of wall time.
            idle = timedelta(minutes=session["idle_timeout_minutes"]) / 30
            assert closed == _parse(session["last_accessed_at"]) + idle


def test_leak_mostly_ends_by_idle_timeout() -> None:
    account, _ = _run("leak", seed=1)
    endings = Counter(s["close_reason"] for s in _history(account) if s["status"] != "active")
    assert endings.most_common(1)[0][0] == "idle_timeout"
    assert endings["idle_timeout"] > sum(endings.values()) / 2


def test_leak_keeps_live_sessions_overdue_past_both_limits() -> None:
    clock = ManualClock(START)
    account = SimulatedAccount(clock=clock, seed=1, profile="leak", speed=10)
    clock.advance(120)
    now = clock.now()
    overdue_both = [
        s
        for s in account.sessions()
        if now > _parse(s["created_at"]) + timedelta(minutes=s["max_duration_minutes"])
        and now > _parse(s["last_accessed_at"]) + timedelta(minutes=s["idle_timeout_minutes"])
    ]
    assert len(overdue_both) >= 2
    assert all(s["status"] == "active" and s["closed_at"] is None for s in overdue_both)


def test_speed_compresses_lifetimes_not_outcomes() -> None:
    slow, _ = _run("steady", seed=9, steps=60)
    fast, _ = _run("steady", seed=9, steps=60, speed=20)
    assert [s["close_reason"] for s in _history(slow)] == [
        s["close_reason"] for s in _history(fast)
    ]
    slow_closed = _history(slow)[-1]
    fast_closed = _history(fast)[-1]
    assert fast_closed["browser_type"] == slow_closed["browser_type"]
    assert fast_closed["duration"] != slow_closed["duration"]


def test_history_stays_bounded_however_long_it_runs() -> None:
    clock = ManualClock(START)
    account = SimulatedAccount(clock=clock, seed=1, profile="steady", history_limit=50)
    for _ in range(100):
        clock.advance(120)
        account.tick()
    closed = [s for s in _history(account) if s["status"] != "active"]
    assert len(closed) == 50
