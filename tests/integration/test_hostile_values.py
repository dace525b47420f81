"""Numbers, times and label values from a hostile or broken API, over loopback HTTP.

An answer the API sends may hold anything JSON can: a 401-digit integer, a time limit of
1e10 minutes, a date in the year 9999, a megabyte of session id, the key itself echoed
back. Whatever it holds, one bad item costs only itself (skipped, counted invalid), a bad
``/usage`` answer fails ``/usage`` alone, ``/metrics`` stays valid and small, and the key
never shows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from notte_exporter.labels import LABEL_VALUE_LIMIT
from notte_exporter.simulator import Fault
from support import API_KEY, sample

PAGE = {"page": 1, "page_size": 100, "has_previous": False}
HUGE = int("9" * 401)


def listing(*items: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(items), "has_next": False, **PAGE}


def rendered(exporter) -> dict[str, Any]:
    """The published exposition, parsed as Prometheus would: it must be valid."""
    text = exporter.exposition().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def started(exporter) -> float:
    return sum(
        sample.value
        for sample in rendered(exporter)["notte_sessions_started"].samples
        if sample.name == "notte_sessions_started_total"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [pytest.param("network_request_bytes", HUGE, id="401-digit-request-bytes"),
     pytest.param("network_response_bytes", HUGE, id="401-digit-response-bytes"),
     pytest.param("network_request_bytes", 2**63, id="request-bytes-2^63"),
     pytest.param("network_response_bytes", -1, id="negative-response-bytes"),
     pytest.param("max_duration_minutes", 1e10, id="max-duration-1e10"),
     pytest.param("idle_timeout_minutes", -1e10, id="idle-timeout-minus-1e10"),
     pytest.param("max_duration_minutes", 1441, id="max-duration-past-a-day"),
     pytest.param("idle_timeout_minutes", 31, id="idle-timeout-past-30"),
     pytest.param("created_at", "9999-12-31T23:59:59Z", id="created-in-9999"),
     pytest.param("last_accessed_at", "0001-01-01T00:00:00", id="accessed-in-year-1")],
)  # fmt: skip
def test_a_session_with_a_number_out_of_bounds_is_skipped_alone(
    api, account, clock, make_exporter, field: str, value: object
) -> None:
    good = account.session(account.start_session(browser_type="chrome"))
    bad = account.session(account.start_session(browser_type="firefox"))
    bad[field] = value
    api.faults.push(Fault.payload(listing(good, bad), path="/sessions", exact=True))
    exporter = make_exporter(sessions_lookup_budget=0)
    clock.advance(30)
    assert exporter.poll_once().ok
    families = rendered(exporter)
    assert sample(exporter, "notte_exporter_invalid_sessions_total") == 1
    assert sample(exporter, "notte_sessions_active", browser_type="chrome") == 1
    assert sample(exporter, "notte_sessions_active", browser_type="firefox") == 0
    assert "notte_sessions_overdue" in families
    clock.advance(30)
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_up") == 1


def test_a_huge_byte_total_is_never_counted_and_the_next_true_one_is(
    api, account, clock, make_exporter
) -> None:
    exporter = make_exporter(sessions_lookup_budget=0)
    session_id = account.start_session(browser_type="chrome")
    clock.advance(30)
    hostile = {**account.session(session_id), "network_request_bytes": HUGE}
    api.faults.push(Fault.payload(listing(hostile), path="/sessions", exact=True))
    assert exporter.poll_once().ok
    account.access(session_id, request_bytes=100)
    clock.advance(30)
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_up") == 1
    assert (
        sample(exporter, "notte_network_request_bytes_total", browser_type="chrome", proxy="false")
        == 100
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [pytest.param("session_count", HUGE, id="401-digit-session-count"),
     pytest.param("function_count", 2**63, id="function-count-2^63"),
     pytest.param("session_count", -1, id="negative-session-count"),
     pytest.param("total_cost", HUGE, id="infinite-total-cost"),
     pytest.param("balance_amount", -HUGE, id="minus-infinite-balance")],
)  # fmt: skip
def test_a_usage_report_with_a_number_out_of_bounds_fails_usage_alone(
    api, account, make_exporter, field: str, value: int
) -> None:
    account.start_session(browser_type="chrome")
    report = {**account.usage(), field: value}
    api.faults.push(Fault.payload(report, path="/usage"))
    exporter = make_exporter(collector_usage=True, notte_retries=0)
    assert exporter.poll_once().ok
    families = rendered(exporter)
    assert sample(exporter, "notte_usage_up") == 0
    assert sample(exporter, "notte_up") == 1
    assert sample(exporter, "notte_sessions_active", browser_type="chrome") == 1
    assert "notte_usage_sessions" not in families


def history_item(**fields: object) -> dict[str, Any]:
    item: dict[str, Any] = {
        "session_id": "from-the-future",
        "status": "closed",
        "created_at": "2026-05-01T10:00:00Z",
        "closed_at": None,
        "duration": "P1D",
        "close_reason": "manual",
    }
    item.update(fields)
    return item


def serve_history(api, item: dict[str, Any]) -> None:
    """The live listing as the account has it (empty), then a history page of ``item``."""
    api.faults.push(Fault.latency(0, path="/sessions", exact=True))
    api.faults.push(Fault.payload(listing(item), path="/sessions", exact=True))


def test_a_session_first_seen_ended_in_the_year_9999_is_never_counted_as_started(
    api, clock, make_exporter
) -> None:
    exporter = make_exporter(notte_concurrency=1)
    for _ in range(3):
        serve_history(api, history_item(created_at="9999-12-31T00:00:00Z"))
        assert exporter.poll_once().ok
        clock.advance(30)
    assert started(exporter) == 0


def test_a_session_first_seen_ended_is_counted_as_started_once_whatever_its_dates(
    api, clock, make_exporter
) -> None:
    # Dated an hour ahead of the exporter's clock (skewed, or plain wrong), and still listed
    # after the exporter has forgotten the ends it counted more than a day ago.
    start = clock.now()
    future = (start + timedelta(hours=1)).isoformat()
    exporter = make_exporter(notte_concurrency=1)
    for hours in (0, 2, 26, 52):
        clock.set(start + timedelta(hours=hours))
        serve_history(api, history_item(created_at=future, duration="PT1M"))
        assert exporter.poll_once().ok
    assert started(exporter) == 1


def served_pages(exporter) -> tuple[str, str]:
    """/metrics and the status page over HTTP, after a poll that also read usage."""
    assert exporter.poll_once().ok
    base = exporter.start().removesuffix("/metrics")
    assert exporter.state.wait_for_polls(2, timeout=10)
    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    page = httpx.get(f"{base}/", timeout=5).text
    return metrics, page


def test_a_megabyte_session_id_is_cut_on_metrics_and_the_status_page(
    account, make_exporter
) -> None:
    # A key inside the id is removed before the id is cut: a cut first would keep a piece of
    # it the redaction no longer recognises.
    huge_id = "x" * 100 + API_KEY + "y" * 1_000_000
    account.start_session(browser_type="chrome", session_id=huge_id)
    account.start_session(browser_type="chrome", session_id=huge_id[:400] + "z")
    exporter = make_exporter(web_listen_address="127.0.0.1:0", sessions_lookup_budget=0)
    metrics, page = served_pages(exporter)
    assert len(metrics) < 100_000  # 3 MB when the ids went whole
    assert len(page) < 20_000  # 1 MB likewise
    info = {f.name: f for f in text_string_to_metric_families(metrics)}["notte_session_info"]
    ids = [s.labels["session_id"] for s in info.samples]
    assert len(set(ids)) == 2
    assert all(len(value) <= LABEL_VALUE_LIMIT for value in ids)
    assert all(value.startswith("x" * 100 + "<redacted>") for value in ids)
    for text in (metrics, page):
        assert API_KEY[:10] not in text


def test_a_key_echoed_in_the_usage_report_is_never_published(api, account, make_exporter) -> None:
    report = {**account.usage(), "plan_type": f"pro {API_KEY}", "period": f"May 2026 {API_KEY}"}
    api.faults.push(Fault.payload(report, path="/usage", times=1000))
    exporter = make_exporter(web_listen_address="127.0.0.1:0", collector_usage=True)
    metrics, page = served_pages(exporter)
    info = {f.name: f for f in text_string_to_metric_families(metrics)}["notte_usage_info"]
    assert [s.labels for s in info.samples] == [
        {"plan_type": "pro <redacted>", "period": "May 2026 <redacted>"}
    ]
    for text in (metrics, page):
        assert API_KEY not in text


def test_an_invalid_item_with_a_megabyte_id_is_logged_in_a_bounded_line(
    api, make_exporter, caplog
) -> None:
    huge_id = API_KEY + "y" * 1_000_000
    api.faults.push(
        Fault.payload(listing({"session_id": huge_id, "status": "active"}), path="/sessions")
    )
    exporter = make_exporter(sessions_lookup_budget=0)
    with caplog.at_level("WARNING", logger="notte_exporter.polling.poller"):
        assert exporter.poll_once().ok
    [line] = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(line) < 1_000
    assert API_KEY not in line
