"""Talking to the API over loopback: headers, paging, retry classification and backoff."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from email.utils import format_datetime

import pytest
from pydantic import SecretStr

from notte_exporter import __version__
from notte_exporter.daemon import Exporter
from notte_exporter.errors import FailureReason
from notte_exporter.keys import ApiKey
from notte_exporter.settings import Settings
from notte_exporter.simulator import Fault
from support import API_KEY, sample

pytestmark = pytest.mark.usefixtures("api")


def test_requests_carry_the_key_user_agent_and_request_origin(api, make_exporter) -> None:
    make_exporter().poll_once()
    request = api.requests[0]
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["user-agent"] == f"notte-exporter/{__version__}"
    assert request.headers["x-notte-request-origin"] == "notte-exporter"


def test_listing_asks_for_live_sessions_with_the_largest_page(api, make_exporter) -> None:
    make_exporter(sessions_lookup_budget=0).poll_once()
    assert api.requests[0].query == {
        "page": "1",
        "page_size": "100",
        "only_active": "true",
        "only_current_token": "false",
    }


def test_every_page_is_followed_and_every_session_counted(api, account, make_exporter) -> None:
    for _ in range(7):
        account.start_session()
    exporter = make_exporter(notte_page_size=3, sessions_lookup_budget=0)
    assert exporter.poll_once().ok
    assert [r.query["page"] for r in api.requests] == ["1", "2", "3"]
    assert sample(exporter, "notte_sessions_active", browser_type="chromium") == 7


def test_a_session_seen_on_two_pages_is_counted_once(api, account, make_exporter) -> None:
    first = account.session(account.start_session(session_id="dup"))
    other = account.session(account.start_session(session_id="other"))
    page = {"page_size": 1, "has_previous": False}
    api.faults.push(
        Fault.payload({"items": [first], "page": 1, "has_next": True, **page}),
        Fault.payload({"items": [first], "page": 2, "has_next": True, **page}),
        Fault.payload({"items": [other], "page": 3, "has_next": False, **page}),
    )
    exporter = make_exporter(notte_page_size=1, sessions_lookup_budget=0)
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_sessions_active", browser_type="chromium") == 2


@pytest.mark.parametrize("code", [429, 500, 502, 503, 504, 529])
def test_transient_statuses_are_retried(api, make_exporter, sleeps, code: int) -> None:
    api.faults.push(Fault.status(code))
    exporter = make_exporter(sessions_lookup_budget=0)
    assert exporter.poll_once().ok
    assert len(sleeps) == 1
    assert sample(exporter, "notte_api_retries_total", endpoint="/sessions") == 1
    assert sample(exporter, "notte_api_requests_total", endpoint="/sessions", code=str(code)) == 1


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(api, make_exporter, sleeps, code: int) -> None:
    api.faults.push(Fault.status(code))
    exporter = make_exporter(sessions_lookup_budget=0)
    assert not exporter.poll_once().ok
    assert sleeps == []
    assert len(api.requests) == 1


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.truncated()], ids=["reset", "truncated"])
def test_broken_connections_are_retried(api, make_exporter, sleeps, fault: Fault) -> None:
    api.faults.push(fault)
    assert make_exporter(sessions_lookup_budget=0).poll_once().ok
    assert len(sleeps) == 1


def test_retry_after_in_seconds_is_honoured(api, make_exporter, sleeps) -> None:
    api.faults.push(Fault.status(503, headers={"Retry-After": "7"}))
    assert make_exporter(sessions_lookup_budget=0).poll_once().ok
    assert sleeps == [7.0]


def test_retry_after_as_an_http_date_is_honoured(api, clock, make_exporter, sleeps) -> None:
    when = clock.now() + timedelta(seconds=10)
    api.faults.push(Fault.status(429, headers={"Retry-After": format_datetime(when, usegmt=True)}))
    assert make_exporter(sessions_lookup_budget=0).poll_once().ok
    assert sleeps == [10.0]


def test_rate_limit_reset_is_honoured_on_429(api, clock, make_exporter, sleeps) -> None:
    reset = int(clock.now().timestamp()) + 12
    api.faults.push(Fault.status(429, headers={"X-RateLimit-Reset": str(reset)}))
    assert make_exporter(sessions_lookup_budget=0).poll_once().ok
    assert sleeps == [12.0]


def test_a_wait_longer_than_the_poll_budget_fails_at_once(api, make_exporter, sleeps) -> None:
    api.faults.push(Fault.status(429, headers={"Retry-After": "3600"}))
    exporter = make_exporter(sessions_lookup_budget=0)
    status = exporter.poll_once()
    assert status.reason is not None
    assert status.reason.value == "rate_limited"
    assert sleeps == []


def test_backoff_grows_exponentially_with_full_jitter(api, make_exporter, sleeps) -> None:
    api.faults.push(Fault.status(500, times=4))
    exporter = make_exporter(sessions_lookup_budget=0, notte_retries=3)
    exporter.poll_once()
    assert len(sleeps) == 3
    ceilings = (0.5, 1.0, 2.0)
    assert all(0 <= delay <= top for delay, top in zip(sleeps, ceilings, strict=True))


def test_retries_stop_at_the_budget_and_report_the_last_cause(api, make_exporter, sleeps) -> None:
    api.faults.push(Fault.status(503, times=3))
    exporter = make_exporter(sessions_lookup_budget=0, notte_retries=2)
    status = exporter.poll_once()
    assert status.reason is not None
    assert status.reason.value == "server_error"
    assert "503" in status.message
    assert len(api.requests) == 3


def test_rate_limit_headers_become_gauges(api, make_exporter) -> None:
    exporter = make_exporter(sessions_lookup_budget=0)
    exporter.poll_once()
    assert sample(exporter, "notte_api_rate_limit_limit") == 10_000
    assert sample(exporter, "notte_api_rate_limit_remaining") == 9_999
    assert sample(exporter, "notte_api_rate_limit_reset_timestamp_seconds") is not None


def test_rate_limit_gauges_are_absent_when_the_api_sends_no_headers(make_exporter, api) -> None:
    api.rate_limit = None
    exporter = make_exporter(sessions_lookup_budget=0)
    exporter.poll_once()
    assert sample(exporter, "notte_api_rate_limit_limit") is None


def test_stopping_ends_a_retry_wait_at_once_without_failing_the_poll(api, clock) -> None:
    # On the listing only: the usage collector's own thread reads /usage meanwhile.
    api.faults.push(Fault.status(503, headers={"Retry-After": "20"}, path="/sessions", exact=True))
    settings = Settings(
        notte_api_url=api.url,
        notte_api_key=SecretStr(API_KEY),
        web_listen_address="127.0.0.1:0",
        sessions_lookup_budget=0,
    )
    exporter = Exporter(settings, ApiKey(settings.notte_api_key), clock=clock.now,
                        process_metrics=False)  # fmt: skip
    exporter.start()
    try:
        for _ in range(1000):  # bounded: until the poll is in its 20 s wait
            if sample(exporter, "notte_api_retries_total", endpoint="/sessions") == 1:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the poll never began to wait")
    finally:
        exporter.stop(grace=5.0)
    (poll_thread,) = [t for t in exporter._loop_threads if t.name.startswith("poll")]
    assert not poll_thread.is_alive()
    assert sample(exporter, "notte_exporter_polls_total") == 1
    for reason in FailureReason:
        assert sample(exporter, "notte_exporter_poll_failures_total", reason=reason.value) == 0


_OUT_OF_DESCRIPTORS = """
import os, resource, sys
from pydantic import SecretStr
from notte_exporter.settings import Settings
from notte_exporter.daemon import Exporter
from notte_exporter.keys import ApiKey

settings = Settings(
    notte_api_url=sys.argv[1], notte_api_key=SecretStr(sys.argv[2]), notte_retries=0,
    collector_usage=False,
)
exporter = Exporter(settings, ApiKey(settings.notte_api_key), process_metrics=False)
hoard = []
try:
    while True:
        hoard.append(open(os.devnull))
except OSError:
    pass
status = exporter.poll_once()
hoard.clear()
print(status.reason, status.advice, sep="\\n")
"""


@pytest.mark.slow
def test_running_out_of_descriptors_is_not_blamed_on_the_network(api) -> None:
    # A process of its own, whose every descriptor is taken before it polls: the connect
    # fails with EMFILE as it would in an exporter flooded with connections.
    env = {name: value for name, value in os.environ.items() if not name.startswith("NOTTE_")}
    result = subprocess.run(
        [sys.executable, "-c", _OUT_OF_DESCRIPTORS, api.url, API_KEY],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reason, advice = result.stdout.splitlines()
    assert reason == "network"
    assert "file descriptors" in advice
    assert "DNS" not in advice


def test_a_cookie_the_api_sets_is_never_sent_back(api, make_exporter) -> None:
    listing = {"items": [], "page": 1, "page_size": 100, "has_next": False, "has_previous": False}
    api.faults.push(Fault.status(200, listing, headers={"Set-Cookie": "lb=node-1; Path=/"}))
    exporter = make_exporter(sessions_lookup_budget=0)
    assert exporter.poll_once().ok
    assert exporter.poll_once().ok
    assert [request.headers.get("cookie") for request in api.requests] == [None, None]
