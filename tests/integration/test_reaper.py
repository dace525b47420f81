"""The reaper against the simulated API over loopback: what it stops, what it never does.

Write requests are counted in the simulator's recorded requests: where there must be none,
the test proves it by counting. Time is the shared ManualClock; polls are driven by hand.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from notte_exporter.daemon import Exporter
from notte_exporter.logs import LogfmtFormatter, SecretFilter
from notte_exporter.simulator import Fault, ManualClock, SimulatedAccount, SimulatorServer
from support import API_KEY, closed, sample

POLICY = """\
max_stops_per_poll: {per_poll}
max_stops_per_hour: {per_hour}
exclude_sessions: [{excluded}]
policies:
  - name: idle-10m
    idle_longer_than: 10m
  - name: old-chrome
    older_than: 2h
    browser_types: [chrome]
"""


def policy_file(
    tmp_path: Path,
    *,
    dry_run: bool | None = None,
    per_poll: int = 5,
    per_hour: int = 60,
    excluded: str = "",
) -> Path:
    text = POLICY.format(per_poll=per_poll, per_hour=per_hour, excluded=excluded)
    if dry_run is not None:
        text = f"dry_run: {str(dry_run).lower()}\n{text}"
    path = tmp_path / "reaper.yaml"
    path.write_text(text)
    return path


def leaked(
    account: SimulatedAccount,
    clock: ManualClock,
    session_id: str,
    *,
    age: float = 30,
    idle: float = 20,
    **fields: object,
) -> str:
    """A live session started ``age`` minutes ago and idle for ``idle``; the simulated
    platform does not time it out (a stuck session, or one with a long idle timeout)."""
    now = clock.now()
    return account.start_session(
        enforce_timeouts=False,
        session_id=session_id,
        created_at=now - timedelta(minutes=age),
        last_accessed_at=now - timedelta(minutes=idle),
        **fields,
    )


def writes(api: SimulatorServer) -> list[str]:
    """Every request that was not a GET, as `METHOD path`."""
    return [f"{r.method} {r.path}" for r in api.requests if r.method != "GET"]


def stop_of(session_id: str) -> str:
    return f"DELETE /sessions/{session_id}/stop"


def polls(exporter: Exporter, clock: ManualClock, count: int, every: float = 30) -> None:
    """``count`` successful polls, ``every`` seconds apart (the first one now)."""
    for index in range(count):
        if index:
            clock.advance(every)
        assert exporter.poll_once().ok


def stops(exporter: Exporter, policy: str, result: str) -> float | None:
    return sample(exporter, "notte_reaper_stops_total", policy=policy, result=result)


@pytest.fixture
def fleet(account: SimulatedAccount, clock: ManualClock) -> dict[str, str]:
    """Leaked and busy sessions of every kind a policy could be asked about."""
    return {
        "idle": leaked(account, clock, "idle-20m", idle=20),
        "busy": leaked(account, clock, "busy", idle=1),
        "old-chrome": leaked(account, clock, "old-chrome", age=180, idle=1, browser_type="chrome"),
        "old-firefox": leaked(account, clock, "old-ff", age=180, idle=1, browser_type="firefox"),
    }


def test_without_a_policy_file_no_request_but_a_get_is_ever_made(
    api, account, clock, fleet, make_exporter
) -> None:
    for index in range(30):
        leaked(account, clock, f"ancient-{index}", age=1000, idle=900)
    exporter = make_exporter(sessions_lookup_budget=3)
    polls(exporter, clock, 6)
    assert len(api.requests) > 6
    assert writes(api) == []
    assert exporter.reaper is None
    assert b"notte_reaper_" not in exporter.exposition()


def test_a_dry_run_makes_no_write_request_and_counts_each_session_once(
    api, account, clock, fleet, make_exporter, tmp_path, caplog
) -> None:
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path))
    with caplog.at_level(logging.INFO, logger="notte_exporter.reaper"):
        polls(exporter, clock, 6)
    assert writes(api) == []
    assert stops(exporter, "idle-10m", "dry_run") == 1
    assert stops(exporter, "old-chrome", "dry_run") == 1
    assert sum(stops(exporter, p, "stopped") or 0 for p in ("idle-10m", "old-chrome")) == 0
    assert sample(exporter, "notte_reaper_dry_run") == 1
    lines = [r.getMessage() for r in caplog.records if "would stop" in r.getMessage()]
    assert len(lines) == 2
    assert all(line.startswith("reaper dry run: would stop session ") for line in lines)
    assert sorted(account.session_ids()) == sorted(fleet.values())


def test_the_reaper_stops_exactly_the_matching_sessions_each_once(
    api, account, clock, fleet, make_exporter, tmp_path
) -> None:
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path, dry_run=False))
    polls(exporter, clock, 1)
    assert writes(api) == []  # one poll is never enough
    polls(exporter, clock, 4)
    assert sorted(writes(api)) == sorted([stop_of("idle-20m"), stop_of("old-chrome")])
    assert sorted(account.session_ids()) == ["busy", "old-ff"]
    assert stops(exporter, "idle-10m", "stopped") == 1
    assert stops(exporter, "old-chrome", "stopped") == 1
    assert sample(exporter, "notte_reaper_candidates", policy="idle-10m") == 0
    assert sample(exporter, "notte_reaper_dry_run") == 0
    # The exporter learned both ends as clients stopping their own sessions would show.
    assert closed(exporter, "chromium", "closed", "manual") == 1
    assert closed(exporter, "chrome", "closed", "manual") == 1


def test_a_session_used_between_two_polls_is_never_stopped(
    api, account, clock, make_exporter, tmp_path
) -> None:
    leaked(account, clock, "agent", idle=11)
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path, dry_run=False))
    polls(exporter, clock, 1)
    account.access("agent")  # the agent came back: the first poll's data is stale
    polls(exporter, clock, 4)
    assert writes(api) == []
    assert stops(exporter, "idle-10m", "stopped") == 0


def test_an_excluded_session_is_never_stopped_nor_a_candidate(
    api, account, clock, make_exporter, tmp_path
) -> None:
    leaked(account, clock, "keep-me", idle=60)
    exporter = make_exporter(
        reaper_config_file=policy_file(tmp_path, dry_run=False, excluded="keep-me")
    )
    polls(exporter, clock, 4)
    assert writes(api) == []
    assert sample(exporter, "notte_reaper_candidates", policy="idle-10m") == 0


def test_a_failed_poll_decides_nothing(api, account, clock, make_exporter, tmp_path) -> None:
    leaked(account, clock, "older", age=30, idle=60)
    leaked(account, clock, "newer", age=29, idle=60)
    exporter = make_exporter(
        reaper_config_file=policy_file(tmp_path, dry_run=False),
        notte_page_size=1,
        sessions_lookup_budget=0,
    )
    # Page 1 of the first poll shows a match, then page 2 fails: the poll saw nothing.
    api.faults.push(
        Fault.latency(0, path="/sessions", exact=True),
        Fault.status(503, path="/sessions", exact=True, times=3),
    )
    assert not exporter.poll_once().ok
    clock.advance(30)
    polls(exporter, clock, 1)
    assert writes(api) == []  # the failed poll's match is not the first of two
    clock.advance(30)
    polls(exporter, clock, 1)
    assert writes(api) == [stop_of("older"), stop_of("newer")]


@pytest.mark.slow  # a second of CPU or more: the full tier (tests/tiers.py)
def test_both_limits_hold_against_a_thousand_candidates(
    api, account, clock, make_exporter, tmp_path
) -> None:
    for index in range(1000):
        leaked(account, clock, f"s{index:04d}", age=30 + index / 100, idle=20)
    exporter = make_exporter(
        reaper_config_file=policy_file(tmp_path, dry_run=False, per_poll=25, per_hour=60),
        sessions_lookup_budget=0,
    )
    per_poll = []
    for index in range(8):  # four minutes of polls
        if index:
            clock.advance(30)
        before = len(writes(api))
        assert exporter.poll_once().ok
        per_poll.append(len(writes(api)) - before)
    assert per_poll == [0, 25, 25, 10, 0, 0, 0, 0]
    oldest = [stop_of(f"s{index:04d}") for index in range(999, 939, -1)]
    assert writes(api) == oldest
    assert sample(exporter, "notte_reaper_candidates", policy="idle-10m") == 940
    clock.advance(30 + 3600 - 7 * 30)  # an hour after the first stops: 25 more may go
    assert exporter.poll_once().ok
    assert len(writes(api)) == 85


@pytest.mark.parametrize(
    ("code", "body"),
    [
        pytest.param(404, {"detail": "Session not found"}, id="404"),
        pytest.param(400, {"message": "Session already stopped"}, id="stopped"),
        pytest.param(409, {"detail": "session is already closed"}, id="closed"),
    ],
)
def test_a_session_already_gone_is_counted_so_and_never_tried_again(
    api, account, clock, make_exporter, tmp_path, code: int, body: dict[str, str]
) -> None:
    leaked(account, clock, "gone", idle=60)
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path, dry_run=False))
    api.faults.push(Fault.status(code, body=body, path="/sessions/gone/stop", exact=True))
    polls(exporter, clock, 5)  # the listing still shows it live, as a lagging one would
    assert writes(api) == [stop_of("gone")]
    assert stops(exporter, "idle-10m", "already_gone") == 1
    assert stops(exporter, "idle-10m", "failed") == 0


@pytest.mark.parametrize("code", [429, 500, 503])
def test_a_429_or_5xx_fails_and_is_tried_once_more_at_the_next_poll_only(
    api, account, clock, make_exporter, tmp_path, sleeps, code: int
) -> None:
    leaked(account, clock, "flaky", idle=60)
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path, dry_run=False))
    api.faults.push(Fault.status(code, path="/sessions/flaky/stop", exact=True))
    polls(exporter, clock, 2)
    assert writes(api) == [stop_of("flaky")]  # no retry within the poll, no tight loop
    assert sleeps == []
    assert stops(exporter, "idle-10m", "failed") == 1
    polls(exporter, clock, 1)
    assert writes(api) == [stop_of("flaky")] * 2
    assert stops(exporter, "idle-10m", "stopped") == 1
    assert account.session_ids() == []


def test_a_session_is_stopped_at_most_once_across_a_reload(
    api, account, clock, make_exporter, tmp_path
) -> None:
    leaked(account, clock, "zombie", idle=60)
    path = policy_file(tmp_path, dry_run=False)
    exporter = make_exporter(reaper_config_file=path)
    polls(exporter, clock, 2)
    assert writes(api) == [stop_of("zombie")]
    # A listing that still shows it live (lagging), and the policy file edited meanwhile.
    account.set("zombie", status="active", closed_at=None, close_reason=None)
    path.write_text(path.read_text().replace("max_stops_per_poll: 5", "max_stops_per_poll: 6"))
    assert exporter.reload()
    polls(exporter, clock, 4)
    assert writes(api) == [stop_of("zombie")]


def test_turning_the_dry_run_off_stops_what_it_counted_at_the_next_poll(
    api, account, clock, make_exporter, tmp_path
) -> None:
    leaked(account, clock, "leak", idle=60)
    path = policy_file(tmp_path, dry_run=True)
    exporter = make_exporter(reaper_config_file=path)
    polls(exporter, clock, 3)
    assert writes(api) == []
    path.write_text(path.read_text().replace("dry_run: true", "dry_run: false"))
    assert exporter.reload() == [
        "reaper config reloaded: dry run is off: matching sessions are stopped from now on"
    ]
    polls(exporter, clock, 1)
    assert writes(api) == [stop_of("leak")]
    assert stops(exporter, "idle-10m", "dry_run") == 1
    assert stops(exporter, "idle-10m", "stopped") == 1


def test_a_changed_policy_needs_two_polls_under_its_new_definition(
    api, account, clock, make_exporter, tmp_path
) -> None:
    leaked(account, clock, "leak", idle=60)
    path = policy_file(tmp_path, dry_run=False)
    exporter = make_exporter(reaper_config_file=path)
    polls(exporter, clock, 1)
    path.write_text(path.read_text().replace("idle_longer_than: 10m", "idle_longer_than: 15m"))
    exporter.reload()
    polls(exporter, clock, 1)
    assert writes(api) == []
    polls(exporter, clock, 1)
    assert writes(api) == [stop_of("leak")]


def test_a_fault_in_the_reaper_never_fails_a_poll(
    api, account, clock, make_exporter, tmp_path, monkeypatch, caplog
) -> None:
    from notte_exporter.reaper.decide import Matcher

    def broken(self, session):
        raise RuntimeError("a bug")

    leaked(account, clock, "leak", idle=60)
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path, dry_run=False))
    monkeypatch.setattr(Matcher, "match", broken)
    with caplog.at_level(logging.ERROR):
        polls(exporter, clock, 3)  # each one succeeds
    assert writes(api) == []
    assert "reaper: could not read this poll's sessions (RuntimeError: a bug)" in caplog.text


def test_a_stop_whose_outcome_is_unknown_fails_and_the_next_one_still_goes(
    api, account, clock, make_exporter, tmp_path, monkeypatch
) -> None:
    leaked(account, clock, "older", age=40, idle=60)
    leaked(account, clock, "newer", age=35, idle=60)
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path, dry_run=False))
    assert exporter.reaper is not None
    real = exporter.client.stop_session

    def stop_session(session_id, *, deadline):
        if session_id == "older":
            raise RuntimeError("connection state unknown")
        return real(session_id, deadline=deadline)

    monkeypatch.setattr(exporter.client, "stop_session", stop_session)
    polls(exporter, clock, 2)
    assert writes(api) == [stop_of("newer")]
    assert stops(exporter, "idle-10m", "failed") == 1
    assert stops(exporter, "idle-10m", "stopped") == 1


def test_every_policys_series_start_at_zero(make_exporter, tmp_path) -> None:
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path))
    for policy in ("idle-10m", "old-chrome"):
        for result in ("stopped", "dry_run", "already_gone", "failed"):
            assert stops(exporter, policy, result) == 0
        assert sample(exporter, "notte_reaper_saved_browser_seconds_total", policy=policy) == 0
    assert sample(exporter, "notte_reaper_dry_run") == 1


def test_a_stop_counts_the_browser_time_notte_would_still_have_billed(
    account, clock, make_exporter, tmp_path
) -> None:
    leaked(account, clock, "slow", age=40, idle=11, idle_timeout_minutes=20,
           max_duration_minutes=60)  # fmt: skip
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path, dry_run=False))
    polls(exporter, clock, 2)
    # Stopped 11.5 minutes after its last access; its idle timeout would have come at 20.
    saved = sample(exporter, "notte_reaper_saved_browser_seconds_total", policy="idle-10m")
    assert saved == 8.5 * 60


def test_each_action_is_one_audit_line_with_its_facts(
    api, account, clock, make_exporter, tmp_path, caplog
) -> None:
    leaked(account, clock, "flaky", idle=60, age=90, browser_type="firefox")
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path, dry_run=False))
    api.faults.push(Fault.status(503, path="/sessions/flaky/stop", exact=True))
    with caplog.at_level(logging.INFO, logger="notte_exporter.reaper"):
        polls(exporter, clock, 3)
    failed, stopped = [r for r in caplog.records if r.name.startswith("notte_exporter.reaper")]
    assert failed.levelno == stopped.levelno == logging.INFO
    assert failed.getMessage().startswith(
        "reaper could not stop session flaky (policy idle-10m, firefox, age 1h30m30s, "
        "idle 1h30s): DELETE /sessions/{session_id}/stop answered 503"
    )
    assert failed.fields == {  # type: ignore[attr-defined]
        "session_id": "flaky",
        "policy": "idle-10m",
        "result": "failed",
        "age_seconds": 5430.0,
        "idle_seconds": 3630.0,
        "browser_type": "firefox",
        "status": 503,
    }
    assert stopped.getMessage() == (
        "reaper stopped session flaky (policy idle-10m, firefox, age 1h31m, idle 1h1m)"
    )


def test_a_long_session_id_is_cut_in_the_audit_line_and_on_the_page(
    api, account, clock, make_exporter, tmp_path, caplog
) -> None:
    # As long as a URL path the simulator's HTTP server still takes (64 KiB at most).
    huge_id = "x" * 20_000
    leaked(account, clock, huge_id, idle=60)
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path, dry_run=False))
    with caplog.at_level(logging.INFO, logger="notte_exporter.reaper"):
        polls(exporter, clock, 2)
    # The stop itself names the whole id: only what is shown is cut.
    assert writes(api) == [stop_of(huge_id)]
    [line] = [r.getMessage() for r in caplog.records if r.name.startswith("notte_exporter.reaper")]
    assert line.startswith("reaper stopped session xxx")
    assert len(line) < 1_000
    assert len(exporter.status_page()) < 20_000


def test_the_status_page_shows_the_policies_the_mode_and_the_last_actions(
    account, clock, make_exporter, tmp_path
) -> None:
    leaked(account, clock, "<script>alert(1)</script>", idle=60)
    exporter = make_exporter(reaper_config_file=policy_file(tmp_path, dry_run=False))
    polls(exporter, clock, 2)
    page = exporter.status_page()
    section = page.split("<h2>Reaper</h2>", 1)[1].split("</section>", 1)[0]
    assert "idle longer than 10m" in section
    assert "older than 2h</td><td>chrome</td>" in section
    assert "live</span>: matching sessions are stopped" in section
    assert "5 stops per poll, 60 per rolling hour" in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "<script>" not in section
    assert ">stopped<" in section


def test_without_a_policy_file_the_page_has_no_reaper_section(make_exporter) -> None:
    assert "<h2>Reaper</h2>" not in make_exporter().status_page()


@pytest.fixture
def log_output(make_exporter) -> Iterator[tuple[io.StringIO, list[Exporter]]]:
    """What the package logs, written as the daemon writes it (logfmt, redaction filter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    exporters: list[Exporter] = []
    handler.addFilter(lambda record: SecretFilter(exporters[0].redact).filter(record))
    logger = logging.getLogger("notte_exporter")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream, exporters
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_the_key_appears_in_no_audit_line_page_or_metric(
    api, account, clock, make_exporter, tmp_path, log_output
) -> None:
    stream, exporters = log_output
    # A policy named like the key, a hostile API that names a session after it and echoes
    # it in a failed stop's answer: the worst an operator or an API could do.
    path = tmp_path / "reaper.yaml"
    path.write_text(
        f"dry_run: false\npolicies:\n  - name: {API_KEY}\n    idle_longer_than: 10m\n"
        "  - name: other\n    idle_longer_than: 10m\n"
    )
    leaked(account, clock, API_KEY, idle=60)
    leaked(account, clock, "echo", idle=60)
    api.faults.push(
        Fault.status(503, body={"message": f"bad token {API_KEY}"}, path="/sessions/echo/stop")
    )
    exporter = make_exporter(reaper_config_file=path, web_listen_address="127.0.0.1:0")
    exporters.append(exporter)
    polls(exporter, clock, 2)
    base = exporter.start().removesuffix("/metrics")
    served = [httpx.get(f"{base}{route}", timeout=5).text for route in ("/", "/metrics")]
    assert {stop_of(API_KEY), stop_of("echo")} <= set(writes(api))
    logged = stream.getvalue()
    assert "reaper stopped session <redacted>" in logged
    assert "reaper could not stop session echo" in logged
    assert 'notte_reaper_stops_total{policy="<redacted>"' in served[1]
    assert API_KEY not in "\n".join([logged, *served])
