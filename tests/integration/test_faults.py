"""The fault matrix: every way the API can fail, and what the exporter does about it.

For each failure: notte_up drops to 0, the failure is counted under its reason, one log line
says what happened and what to do, the previous snapshot is still served, the usage
collector (its own schedule, its own notte_usage_up) is untouched, and the next poll works
again. The other side, /usage failing while the sessions are fine, is in test_usage.py.
"""

import logging
import threading

import pytest

from notte_exporter.errors import wrong_url_advice
from notte_exporter.simulator import Fault
from support import sample

NOT_JSON = "the API answered something the exporter cannot read"
PAGE = {"page": 1, "page_size": 100, "has_previous": False}


@pytest.fixture
def watched(account, make_exporter):
    """An exporter that has already seen two live sessions once (and read usage once)."""
    account.start_session(browser_type="firefox")
    account.start_session(browser_type="firefox")
    exporter = make_exporter(
        notte_retries=1, sessions_lookup_budget=0, notte_timeout=0.3, collector_usage=True
    )
    assert exporter.poll_once().ok
    return exporter


CASES = [
    pytest.param([Fault.status(401)], "unauthorized", "NOTTE_API_KEY", id="401"),
    pytest.param([Fault.status(403)], "forbidden", "not allowed", id="403"),
    pytest.param([Fault.status(429, times=2)], "rate_limited", "rate limit", id="429"),
    pytest.param([Fault.status(500, times=2)], "server_error", "answered 500", id="500"),
    pytest.param([Fault.status(502, times=2)], "server_error", "answered 502", id="502"),
    pytest.param([Fault.status(503, times=2)], "server_error", "answered 503", id="503"),
    pytest.param([Fault.status(504, times=2)], "server_error", "answered 504", id="504"),
    pytest.param([Fault.status(529, times=2)], "server_error", "Too many sessions", id="529"),
    pytest.param([Fault.status(501)], "server_error", "answered 501", id="501"),
    pytest.param([Fault.status(422)], "other", "answered 422", id="422"),
    pytest.param([Fault.status(404)], "other", "answered 404", id="404"),
    pytest.param(
        [Fault.status(404, body="<html>Not Found</html>", content_type="text/html")], "other",
        "answered 404", id="404-html",
    ),
    pytest.param([Fault.reset(times=2)], "network", "cannot reach", id="reset"),
    pytest.param([Fault.truncated(times=2)], "network", "cannot reach", id="truncated"),
    pytest.param([Fault.malformed_json()], "invalid_response", NOT_JSON, id="malformed-json"),
    pytest.param(
        [Fault.status(200, body="<html>proxy</html>", content_type="text/html")],
        "invalid_response", "not JSON", id="html-instead-of-json",
    ),
    pytest.param(
        [Fault.status(200, body="<!doctype html><title>Login</title>", content_type="")],
        "invalid_response", "an HTML page", id="html-without-content-type",
    ),
    pytest.param(
        [Fault.payload({"status": "ok", "version": "1.0"})], "invalid_response",
        "not a session listing", id="other-service-json",
    ),
    pytest.param([Fault.payload([1, 2])], "invalid_response", "not a session listing",
                 id="json-list"),
    pytest.param(
        [Fault.payload({"items": "none", "has_next": False, **PAGE})], "invalid_response",
        "not a session listing", id="listing-with-a-broken-field",
    ),
    pytest.param(
        [Fault.payload({"sessions": []})], "invalid_response", "not a session listing",
        id="wrong-shape",
    ),
    pytest.param(
        [Fault.payload({"items": [], "has_next": True, **PAGE})], "invalid_response",
        "empty but says has_next", id="empty-page-with-has-next",
    ),
]  # fmt: skip


WRONG_URL = "does not look like the Notte API; check --notte.api-url"
REPORT = "please report it"
# What each case of the matrix tells the operator to do: the advice is pinned per case, so
# a new case cannot be added without deciding what it should say.
ADVICE_BY_CASE = {
    "401": "check that NOTTE_API_KEY (or --notte.api-key-file) holds a current key",
    "403": "use a key of the account",
    "429": "raise --poll.interval or lower --sessions.lookup-budget",
    "500": "the exporter keeps retrying",
    "502": "the exporter keeps retrying",
    "503": "the exporter keeps retrying",
    "504": "the exporter keeps retrying",
    "529": "the exporter keeps retrying",
    "501": "the exporter keeps retrying",
    "422": "see the message",
    "404": WRONG_URL,
    "404-html": WRONG_URL,
    "reset": "; check --notte.api-url, DNS and egress",
    "truncated": "; check --notte.api-url, DNS and egress",
    "malformed-json": REPORT,
    "html-instead-of-json": WRONG_URL,
    "html-without-content-type": WRONG_URL,
    "wrong-shape": WRONG_URL,
    "other-service-json": WRONG_URL,
    "json-list": WRONG_URL,
    "listing-with-a-broken-field": REPORT,
    "empty-page-with-has-next": REPORT,
}


def test_every_case_of_the_matrix_has_its_advice_pinned() -> None:
    assert {case.id for case in CASES} == set(ADVICE_BY_CASE)


@pytest.mark.parametrize(("faults", "reason", "words"), CASES)
def test_each_failure_gives_the_advice_that_fits_it(
    api, watched, request, faults, reason: str, words: str
) -> None:
    api.faults.push(*faults)
    status = watched.poll_once()
    advice = ADVICE_BY_CASE[request.node.callspec.id]
    assert advice in status.advice
    if advice == WRONG_URL:
        assert f"{api.url} does not look like the Notte API" in status.advice
        assert REPORT not in status.advice
    if "check --notte.api-url, DNS" in advice:
        assert f"cannot reach {api.url};" in status.advice


def test_the_url_in_advice_has_no_query_or_credentials() -> None:
    advice = wrong_url_advice("https://user:pw@example.com:8443/api?token=s3cret#x")
    assert advice.startswith("https://example.com:8443/api does not look like the Notte API")
    assert "s3cret" not in advice
    assert "pw" not in advice


@pytest.mark.parametrize(("faults", "reason", "words"), CASES)
def test_a_failed_poll_keeps_the_snapshot_and_says_why(
    api, watched, caplog, faults, reason: str, words: str
) -> None:
    api.faults.push(*faults)
    with caplog.at_level(logging.WARNING, logger="notte_exporter"):
        status = watched.poll_once()
    assert not status.ok
    assert sample(watched, "notte_up") == 0
    assert sample(watched, "notte_exporter_poll_failures_total", reason=reason) == 1
    assert sample(watched, "notte_sessions_active", browser_type="firefox") == 2
    assert sample(watched, "notte_usage_up") == 1
    [line] = [r.getMessage() for r in caplog.records if "poll failed" in r.getMessage()]
    assert f"poll failed: {reason}:" in line
    assert words in line
    assert watched.poll_once().ok
    assert sample(watched, "notte_up") == 1


def test_a_hung_request_times_out(api, watched) -> None:
    release = threading.Event()
    api.faults.push(Fault.hang(release, times=2))
    try:
        status = watched.poll_once()
    finally:
        release.set()
    assert status.reason is not None
    assert status.reason.value == "timeout"
    assert sample(watched, "notte_exporter_poll_failures_total", reason="timeout") == 1
    assert sample(watched, "notte_sessions_active", browser_type="firefox") == 2


def test_a_runaway_has_next_stops_at_the_page_cap(api, account, make_exporter) -> None:
    item = account.session(account.start_session())
    api.faults.push(Fault.payload({"items": [item], "has_next": True, **PAGE}, times=50))
    exporter = make_exporter(notte_max_pages=4, sessions_lookup_budget=0)
    status = exporter.poll_once()
    assert status.reason is not None
    assert status.reason.value == "invalid_response"
    assert status.message == "GET /sessions still had has_next after 4 pages of 100"
    assert status.advice == (
        "raise --notte.max-pages if the account has more than 400 live sessions at once"
    )
    assert len(api.requests) == 4


def test_a_failure_on_a_later_page_fails_the_whole_poll(api, account, watched) -> None:
    for _ in range(3):
        account.start_session(browser_type="firefox")
    exporter = watched
    api.faults.push(Fault.payload({"items": [], "has_next": True, **PAGE}))
    assert not exporter.poll_once().ok
    assert sample(exporter, "notte_sessions_active", browser_type="firefox") == 2


def test_one_malformed_item_is_counted_and_the_others_still_shown(
    api, account, make_exporter, caplog
) -> None:
    good = account.session(account.start_session(browser_type="chrome"))
    bad = {**good, "session_id": "broken", "created_at": "not a date"}
    api.faults.push(Fault.payload({"items": [good, bad], "has_next": False, **PAGE}))
    exporter = make_exporter(sessions_lookup_budget=0)
    with caplog.at_level(logging.WARNING, logger="notte_exporter"):
        assert exporter.poll_once().ok
    assert sample(exporter, "notte_sessions_active", browser_type="chrome") == 1
    assert sample(exporter, "notte_exporter_invalid_sessions_total") == 1
    assert any("session_id=broken created_at" in r.getMessage() for r in caplog.records)


def test_failures_before_any_success_expose_no_made_up_session_numbers(api, make_exporter) -> None:
    api.faults.push(Fault.status(401))
    exporter = make_exporter()
    exporter.poll_once()
    assert sample(exporter, "notte_up") == 0
    assert sample(exporter, "notte_sessions_active", browser_type="chromium") is None
    assert sample(exporter, "notte_exporter_last_poll_success_timestamp_seconds") is None
