"""The usage collector against the simulator: its schedule, its values and its failures.

Usage is a side dish: whatever ``GET /usage`` does, ``notte_up``, the session metrics and
readiness stay as the session polls make them. The exporter's usage schedule runs on the
shared manual clock, so the number of ``/usage`` requests is counted exactly.
"""

import logging

import pytest

from notte_exporter.simulator import Fault
from support import sample

USAGE_VALUES = {
    ("notte_usage_cost_dollars", ("category", "browser")): "browser_usage_cost",
    ("notte_usage_cost_dollars", ("category", "proxy")): "proxy_usage_cost",
    ("notte_usage_cost_dollars", ("category", "llm")): "llm_usage_cost",
    ("notte_usage_cost_dollars", ("category", "function")): "function_usage_cost",
    ("notte_usage_total_cost_dollars", None): "total_cost",
    ("notte_usage_limit_dollars", ("source", "subscription")): "subscription_limit_amount",
    ("notte_usage_limit_dollars", ("source", "topup")): "topup_limit_amount",
    ("notte_usage_balance_dollars", ("source", "subscription")): "subscription_balance_amount",
    ("notte_usage_balance_dollars", ("source", "topup")): "topup_balance_amount",
    ("notte_usage_total_balance_dollars", None): "balance_amount",
    ("notte_usage_sessions", None): "session_count",
    ("notte_usage_functions", None): "function_count",
}


def usage_requests(api) -> list:
    return [r for r in api.requests if r.path == "/usage"]


@pytest.fixture
def watched(account, make_exporter):
    """An exporter reading usage, that has seen one proxied firefox session."""
    account.start_session(
        browser_type="firefox", proxies=True, idle_timeout_minutes=30, max_duration_minutes=300
    )
    exporter = make_exporter(collector_usage=True, notte_retries=1, usage_interval=300)
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_usage_up") == 1
    return exporter


def test_every_usage_field_becomes_its_metric(api, account, clock, make_exporter) -> None:
    session = account.start_session(proxies=True, idle_timeout_minutes=30, max_duration_minutes=60)
    clock.advance(1800)
    account.access(session, response_bytes=250_000_000)
    exporter = make_exporter(collector_usage=True)
    exporter.poll_once()
    report = account.usage()
    for (name, label), field in USAGE_VALUES.items():
        labels = dict([label]) if label else {}
        assert sample(exporter, name, **labels) == pytest.approx(report[field]), name
    assert sample(exporter, "notte_usage_cost_dollars", category="browser") == pytest.approx(0.05)
    assert sample(exporter, "notte_usage_cost_dollars", category="proxy") == pytest.approx(1.0)
    assert sample(exporter, "notte_usage_limit_exceeded") == 0
    assert sample(exporter, "notte_usage_info", plan_type="pro", period="May 2026") == 1
    assert sample(exporter, "notte_usage_last_success_timestamp_seconds") == (
        clock.now().timestamp()
    )


def test_usage_is_read_once_per_interval_not_once_per_poll(api, clock, make_exporter) -> None:
    exporter = make_exporter(collector_usage=True, poll_interval=30, usage_interval=300)
    for _ in range(40):  # 20 minutes of polls, 30 s apart
        assert exporter.poll_once().ok
        clock.advance(30)
    assert len(usage_requests(api)) == 4
    assert len([r for r in api.requests if r.query.get("only_active") == "true"]) == 40


def test_a_usage_interval_shorter_than_the_poll_interval_is_kept_by_its_own_clock(
    api, clock, make_exporter
) -> None:
    exporter = make_exporter(collector_usage=True, usage_interval=1)
    assert exporter.usage is not None
    for _ in range(10):
        exporter.usage.poll_if_due()
        clock.advance(0.5)
    assert len(usage_requests(api)) == 5


def test_no_collector_usage_makes_no_request_and_serves_no_usage_metric(api, make_exporter) -> None:
    exporter = make_exporter(collector_usage=False)
    assert exporter.poll_once().ok
    assert usage_requests(api) == []
    assert b"notte_usage_" not in exporter.exposition()


FAILURES = [
    pytest.param(Fault.status(401, path="/usage"), "answered 401", id="401"),
    pytest.param(Fault.status(403, path="/usage"), "answered 403", id="403"),
    pytest.param(Fault.status(404, path="/usage"), "answered 404", id="404"),
    pytest.param(Fault.status(500, path="/usage", times=2), "answered 500", id="500"),
    pytest.param(Fault.status(503, path="/usage", times=2), "answered 503", id="503"),
    pytest.param(Fault.reset(path="/usage", times=2), "failed", id="reset"),
    pytest.param(Fault.malformed_json(path="/usage"), "not JSON", id="malformed-json"),
    pytest.param(
        Fault.payload({"plan_type": "pro", "period": "May 2026"}, path="/usage"),
        "GET /usage is not a usage report: session_count: Field required",
        id="changed-shape",
    ),
]


@pytest.mark.parametrize(("fault", "words"), FAILURES)
def test_a_failed_usage_read_leaves_notte_up_sessions_and_readiness_alone(
    api, clock, watched, caplog, fault, words: str
) -> None:
    before = sample(watched, "notte_usage_total_cost_dollars")
    api.faults.push(fault)
    clock.advance(300)
    with caplog.at_level(logging.WARNING, logger="notte_exporter"):
        assert watched.poll_once().ok
    assert sample(watched, "notte_usage_up") == 0
    assert sample(watched, "notte_up") == 1
    assert watched.state.ready
    assert sample(watched, "notte_sessions_active", browser_type="firefox") == 1
    assert sample(watched, "notte_exporter_poll_failures_total", reason="other") == 0
    # The last report read stays, stale but true; its age shows.
    assert sample(watched, "notte_usage_total_cost_dollars") == before
    [line] = [r.getMessage() for r in caplog.records if "cannot read usage" in r.getMessage()]
    assert words in line
    assert "session metrics are unaffected" in line


def test_a_transient_usage_failure_is_retried(api, clock, watched) -> None:
    api.faults.push(Fault.status(503, path="/usage"))
    clock.advance(300)
    watched.poll_once()
    assert sample(watched, "notte_usage_up") == 1
    assert sample(watched, "notte_api_retries_total", endpoint="/usage") == 1


@pytest.mark.slow
@pytest.mark.parametrize("status", [403, 404])
def test_a_refused_usage_backs_off_to_hourly_and_says_why_once(
    api, clock, watched, caplog, status: int
) -> None:
    api.faults.push(Fault.status(status, path="/usage", times=1000))
    api.clear_requests()
    with caplog.at_level(logging.WARNING, logger="notte_exporter"):
        for _ in range(2 * 130):  # two hours and ten minutes of polls, 30 s apart
            clock.advance(30)
            assert watched.poll_once().ok
    # Read at 5 minutes (refused), then hourly: at 65 and 125 minutes.
    assert len(usage_requests(api)) == 3
    lines = [r.getMessage() for r in caplog.records if "cannot read usage" in r.getMessage()]
    assert len(lines) == 1
    assert "asking again hourly" in lines[0]
    assert sample(watched, "notte_up") == 1


def test_a_usage_read_that_works_again_is_logged_and_up(api, clock, watched, caplog) -> None:
    api.faults.push(Fault.status(500, path="/usage", times=2))
    clock.advance(300)
    watched.poll_once()
    assert sample(watched, "notte_usage_up") == 0
    clock.advance(300)
    with caplog.at_level(logging.INFO, logger="notte_exporter"):
        watched.poll_once()
    assert sample(watched, "notte_usage_up") == 1
    assert any("usage is readable again" in r.getMessage() for r in caplog.records)


def test_unknown_usage_fields_are_ignored(api, account, clock, watched) -> None:
    report = {**account.usage(), "currency": "usd", "next_reset": "2026-06-01T00:00:00Z"}
    api.faults.push(Fault.payload(report, path="/usage"))
    clock.advance(300)
    watched.poll_once()
    assert sample(watched, "notte_usage_up") == 1
    assert sample(watched, "notte_usage_total_cost_dollars") == report["total_cost"]


def test_usage_failures_before_any_success_expose_no_made_up_dollars(api, make_exporter) -> None:
    api.faults.push(Fault.status(403, path="/usage"))
    exporter = make_exporter(collector_usage=True)
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_usage_up") == 0
    assert sample(exporter, "notte_usage_total_cost_dollars") is None
    assert sample(exporter, "notte_usage_last_success_timestamp_seconds") is None


def test_a_session_poll_failure_leaves_usage_alone(api, clock, watched) -> None:
    api.faults.push(Fault.status(500, path="/sessions", exact=True, times=3))
    clock.advance(300)
    assert not watched.poll_once().ok
    assert sample(watched, "notte_up") == 0
    assert sample(watched, "notte_usage_up") == 1


def test_the_month_rollover_is_shown_as_the_api_reports_it(
    api, account, clock, make_exporter
) -> None:
    clock.set(clock.now().replace(day=31, hour=23, minute=0))
    session = account.start_session(idle_timeout_minutes=30, max_duration_minutes=180)
    exporter = make_exporter(collector_usage=True, usage_interval=300)
    for _ in range(24):  # two hours, across midnight into June
        clock.advance(300)
        account.access(session)
        exporter.poll_once()
    # Usage restarted with June: one hour of the session, not three.
    assert sample(exporter, "notte_usage_info", plan_type="pro", period="June 2026") == 1
    assert sample(exporter, "notte_usage_cost_dollars", category="browser") == pytest.approx(0.1)


def test_usage_log_lines_carry_structured_fields(api, clock, watched, caplog) -> None:
    api.faults.push(Fault.status(403, path="/usage"))
    clock.advance(300)
    with caplog.at_level(logging.WARNING, logger="notte_exporter"):
        watched.poll_once()
    [record] = [r for r in caplog.records if "cannot read usage" in r.getMessage()]
    assert record.fields == {
        "endpoint": "/usage",
        "outcome": "failure",
        "reason": "forbidden",
        "status": 403,
        "retry_in_seconds": 3600,
    }
