"""Scripted control of a simulated account, its timeouts and its bounded history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notte_exporter.simulator import MISSING, ManualClock, SimulatedAccount, SystemClock

START = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)


def test_started_session_follows_the_session_response_schema(account: SimulatedAccount) -> None:
    session_id = account.start_session(browser_type="firefox", proxies=True)
    session = account.session(session_id)
    assert session["session_id"] == session_id
    assert session["status"] == "active"
    assert session["browser_type"] == "firefox"
    assert session["proxies"] is True
    assert session["created_at"] == "2026-05-01T10:00:00Z"
    assert session["closed_at"] is None
    assert session["close_reason"] is None
    assert session["idle_timeout_minutes"] == 3
    assert session["max_duration_minutes"] == 15
    assert session["timeout_minutes"] == 3
    assert session["auth_ids"] == []  # the SDK requires a list (tests/contract)
    assert session["system_hidden"] is False
    assert session["duration"] == "PT0S"


def test_duration_of_a_live_session_grows_with_the_clock(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.advance(41.286072)
    assert account.session(session_id)["duration"] == "PT41.286072S"


def test_access_adds_bytes_and_bumps_last_accessed(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.advance(10)
    account.access(session_id, request_bytes=100, response_bytes=2000)
    account.access(session_id, request_bytes=5)
    session = account.session(session_id)
    assert session["network_request_bytes"] == 105
    assert session["network_response_bytes"] == 2000
    assert session["last_accessed_at"] == "2026-05-01T10:00:10Z"


def test_stop_closes_manually(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.advance(30)
    account.stop(session_id)
    session = account.session(session_id)
    assert session["status"] == "closed"
    assert session["close_reason"] == "manual"
    assert session["closed_at"] == "2026-05-01T10:00:30Z"
    assert session["duration"] == "PT30S"
    assert account.session_ids(only_active=True) == []


def test_fail_ends_in_error_with_the_message(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.fail(session_id, error="Proxy connection failed")
    session = account.session(session_id)
    assert session["status"] == "error"
    assert session["close_reason"] == "error"
    assert session["error"] == "Proxy connection failed"


def test_control_of_a_closed_session_is_refused(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.stop(session_id)
    with pytest.raises(ValueError, match="not live"):
        account.access(session_id)
    with pytest.raises(KeyError):
        account.stop("no-such-session")


def test_set_overrides_any_field_with_raw_values(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.set(
        session_id,
        browser_type="chrome-quantum",
        created_at="2026-05-01T09:59:00.123456",
        duration="P1DT5S",
        status="authenticating",
        unknown_field={"x": 1},
    )
    session = account.session(session_id)
    assert session["browser_type"] == "chrome-quantum"
    assert session["created_at"] == "2026-05-01T09:59:00.123456"
    assert session["duration"] == "P1DT5S"
    assert session["unknown_field"] == {"x": 1}
    # An unknown, non-terminal status is still a live session.
    assert account.session_ids(only_active=True) == [session_id]


def test_set_missing_removes_a_field(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.set(session_id, created_at=MISSING, duration=MISSING)
    session = account.session(session_id)
    assert "created_at" not in session
    assert "duration" not in session


def test_set_terminal_status_moves_the_session_to_history(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.set(session_id, status="closed")
    assert account.session_ids(only_active=True) == []
    assert account.session_ids(only_active=False) == [session_id]


def test_remove_forgets_the_session(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.remove(session_id)
    with pytest.raises(KeyError):
        account.session(session_id)
    assert account.session_ids(only_active=False) == []


def test_sessions_are_listed_newest_created_first(account: SimulatedAccount) -> None:
    first = account.start_session()
    account.advance(1)
    second = account.start_session()
    backdated = account.start_session(created_at=START - timedelta(minutes=1))
    assert account.session_ids() == [second, first, backdated]


def test_idle_session_times_out_at_its_deadline(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.advance(60)
    account.access(session_id)
    account.advance(180)  # exactly at the deadline: still alive ("now > limit")
    assert account.session(session_id)["status"] == "active"
    account.advance(100)
    session = account.session(session_id)
    assert session["status"] == "timed_out"
    assert session["close_reason"] == "idle_timeout"
    assert session["closed_at"] == "2026-05-01T10:04:00Z"  # last access + 3 min, not now
    assert session["duration"] == "PT4M"


def test_busy_session_times_out_at_max_duration(account: SimulatedAccount) -> None:
    session_id = account.start_session(max_duration_minutes=5)
    for _ in range(10):
        account.advance(30)
        account.access(session_id)
    account.advance(30)
    session = account.session(session_id)
    assert session["status"] == "timed_out"
    assert session["close_reason"] == "max_duration"
    assert session["closed_at"] == "2026-05-01T10:05:00Z"


def test_access_after_the_deadline_finds_the_session_closed(account: SimulatedAccount) -> None:
    session_id = account.start_session()
    account.clock.advance(500)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="not live"):
        account.access(session_id)


def test_without_enforcement_sessions_stay_active_overdue(clock: ManualClock) -> None:
    account = SimulatedAccount(clock=clock, enforce_timeouts=False)
    session_id = account.start_session()
    account.advance(3600)
    session = account.session(session_id)
    assert session["status"] == "active"
    assert session["duration"] == "PT1H"


def test_enforcement_turned_back_on_closes_at_the_old_deadline(account: SimulatedAccount) -> None:
    account.enforce_timeouts = False
    session_id = account.start_session()
    account.advance(3600)
    account.enforce_timeouts = True
    session = account.session(session_id)
    assert session["status"] == "timed_out"
    assert session["closed_at"] == "2026-05-01T10:03:00Z"


def test_one_session_can_be_immune_to_timeouts(account: SimulatedAccount) -> None:
    stuck = account.start_session(enforce_timeouts=False)
    normal = account.start_session()
    account.advance(3600)
    assert account.session(stuck)["status"] == "active"
    assert account.session(normal)["status"] == "timed_out"


def test_speed_compresses_timeouts_but_keeps_reasons(clock: ManualClock) -> None:
    account = SimulatedAccount(clock=clock, speed=60)
    session_id = account.start_session()
    account.advance(3.5)  # 3 minutes of idle timeout at 60x last 3 seconds
    session = account.session(session_id)
    assert session["close_reason"] == "idle_timeout"
    assert session["closed_at"] == "2026-05-01T10:00:03Z"
    assert session["idle_timeout_minutes"] == 3


def test_history_is_capped_to_the_newest_closed(clock: ManualClock) -> None:
    account = SimulatedAccount(clock=clock, history_limit=3)
    ids = []
    for _ in range(5):
        session_id = account.start_session()
        account.stop(session_id)
        ids.append(session_id)
    live = account.start_session()
    assert set(account.session_ids(only_active=False)) == {*ids[2:], live}
    with pytest.raises(KeyError):
        account.session(ids[0])


def test_advance_needs_a_manual_clock() -> None:
    account = SimulatedAccount(clock=SystemClock())
    with pytest.raises(TypeError):
        account.advance(1)


def test_scripted_ids_are_deterministic_from_the_seed() -> None:
    first = SimulatedAccount(clock=ManualClock(START), seed=7)
    second = SimulatedAccount(clock=ManualClock(START), seed=7)
    other = SimulatedAccount(clock=ManualClock(START), seed=8)
    assert first.start_session() == second.start_session() != other.start_session()


def test_page_reports_has_next_and_has_previous(account: SimulatedAccount) -> None:
    for _ in range(5):
        account.start_session()
    first = account.page(1, 2)
    last = account.page(3, 2)
    assert (len(first["items"]), first["has_next"], first["has_previous"]) == (2, True, False)
    assert (len(last["items"]), last["has_next"], last["has_previous"]) == (1, False, True)


def test_system_hidden_sessions_need_include_system(account: SimulatedAccount) -> None:
    hidden = account.start_session(system_hidden=True)
    assert account.sessions() == []
    assert [s["session_id"] for s in account.sessions(include_system=True)] == [hidden]
