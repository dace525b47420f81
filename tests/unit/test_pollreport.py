import logging
from datetime import UTC, datetime

import pytest

from notte_exporter.errors import FailureReason
from notte_exporter.polling.poll_log import PollLog, poll_fields
from notte_exporter.polling.state import PollStatus

AT = datetime(2026, 11, 29, 7, 40, tzinfo=UTC)
LOGGER = "test.pollreport"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ok(sessions: int = 3) -> PollStatus:
    return PollStatus(
        ok=True, finished_at=AT, duration_seconds=0.25, sessions=sessions, pages=1, requests=2,
        http_status=200,
    )  # fmt: skip


def failed(reason: FailureReason = FailureReason.UNAUTHORIZED, status: int | None = 401):
    return PollStatus(
        ok=False, finished_at=AT, duration_seconds=0.1, reason=reason,
        message=f"GET /sessions answered {status}", advice="check the key", pages=0, requests=1,
        http_status=status,
    )  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reporter(clock: Clock) -> PollLog:
    return PollLog(logging.getLogger(LOGGER), monotonic=clock, reminder_every=300)


def lines(caplog, level: int = logging.INFO) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= level]


def test_a_poll_outcome_carries_its_fields() -> None:
    assert poll_fields(ok()) == {
        "outcome": "success", "duration_seconds": 0.25, "sessions": 3, "pages": 1,
        "requests": 2, "status": 200,
    }  # fmt: skip
    assert poll_fields(failed()) == {
        "outcome": "failure", "reason": "unauthorized", "duration_seconds": 0.1, "pages": 0,
        "requests": 1, "status": 401,
    }  # fmt: skip


def test_the_first_failure_is_a_warning_with_fields(reporter, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        reporter.report(failed())
    [line] = lines(caplog, logging.WARNING)
    assert line.getMessage() == (
        "poll failed: unauthorized: GET /sessions answered 401; check the key"
    )
    assert line.fields["reason"] == "unauthorized"
    assert line.fields["status"] == 401


def test_repeated_identical_failures_are_not_logged_at_every_poll(reporter, clock, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for _ in range(9):  # 9 polls 30 s apart: 4 minutes
            reporter.report(failed())
            clock.now += 30
    assert len(lines(caplog, logging.WARNING)) == 1
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 8


def test_a_reminder_comes_after_the_interval_with_the_count(reporter, clock, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for _ in range(11):  # 0 s .. 300 s
            reporter.report(failed())
            clock.now += 30
    _first, reminder = lines(caplog, logging.WARNING)
    assert reminder.getMessage().startswith(
        "poll still failing (10 more since the last line, failing for 5m): unauthorized:"
    )
    assert reminder.fields["repeated"] == 10
    assert reminder.fields["failed_for_seconds"] == 300


def test_a_different_failure_is_logged_at_once(reporter, clock, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        reporter.report(failed())
        clock.now += 30
        reporter.report(failed(FailureReason.SERVER_ERROR, 503))
        clock.now += 30
        reporter.report(failed(FailureReason.SERVER_ERROR, 502))
    assert [r.fields["status"] for r in lines(caplog, logging.WARNING)] == [401, 503, 502]


def test_recovery_is_one_line_saying_how_long_and_how_many(reporter, clock, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        reporter.report(ok())
        for _ in range(5):
            reporter.report(failed())
            clock.now += 30
        reporter.report(ok())
        reporter.report(ok())
    [recovered] = [r for r in lines(caplog) if "recovered" in r.getMessage()]
    assert recovered.levelno == logging.INFO
    assert recovered.getMessage() == "polls recovered after failing for 2m30s (5 failed polls)"
    assert recovered.fields["failed_polls"] == 5
    assert recovered.fields["failed_for_seconds"] == 150
    assert recovered.fields["sessions"] == 3


def test_after_recovery_the_same_failure_is_news_again(reporter, clock, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        reporter.report(failed())
        reporter.report(ok())
        reporter.report(failed())
    assert len(lines(caplog, logging.WARNING)) == 2


def test_successes_are_logged_at_debug_only(reporter, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        reporter.report(ok())
    [line] = [r for r in caplog.records if r.name == LOGGER]
    assert line.levelno == logging.DEBUG
    assert line.fields["outcome"] == "success"
