"""Session metrics over many polls against the simulator, checked exactly.

The exporter and the simulated account share one manual clock: sessions start, transfer,
idle, leak, fail and end between polls exactly when the test says so.
"""

from datetime import timedelta

import pytest

from notte_exporter.simulator import Fault
from support import closed, sample

BROWSERS = ("chromium", "chrome", "firefox", "chrome-nightly", "chrome-turbo")


def total_closed(exporter) -> float:
    return sum(
        sample.value
        for family in exporter.registry.collect()
        if family.name == "notte_sessions_closed"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def get_requests(api) -> list:
    return [r for r in api.requests if r.path.startswith("/sessions/")]


def test_a_day_in_the_life_is_counted_exactly(api, account, clock, make_exporter) -> None:
    before = account.start_session(browser_type="chromium", network_request_bytes=1000)
    clock.advance(10)
    exporter = make_exporter()
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_sessions_active", browser_type="chromium") == 1
    assert sample(exporter, "notte_sessions_started_total", browser_type="chromium") == 0
    assert (
        sample(
            exporter, "notte_network_request_bytes_total", browser_type="chromium", proxy="false"
        )
        == 0
    )

    # Two sessions start; one transfers; the old one keeps transferring.
    clock.advance(5)
    chrome = account.start_session(browser_type="chrome", proxies=True)
    account.start_session(browser_type="firefox")
    account.access(chrome, request_bytes=100, response_bytes=1000)
    account.access(before, request_bytes=50)
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_sessions_started_total", browser_type="chrome") == 1
    assert sample(exporter, "notte_sessions_started_total", browser_type="firefox") == 1
    assert (
        sample(exporter, "notte_network_request_bytes_total", browser_type="chrome", proxy="true")
        == 100
    )
    assert (
        sample(exporter, "notte_network_response_bytes_total", browser_type="chrome", proxy="true")
        == 1000
    )
    assert (
        sample(
            exporter, "notte_network_request_bytes_total", browser_type="chromium", proxy="false"
        )
        == 50
    )
    assert sample(exporter, "notte_sessions_active_with_feature", feature="proxies") == 1

    # The chrome session transfers a little more and is stopped properly by its client.
    clock.advance(30)
    account.access(chrome, request_bytes=20)
    clock.advance(10)
    account.stop(chrome)
    assert exporter.poll_once().ok
    assert closed(exporter, "chrome", "closed", "manual") == 1
    assert (
        sample(exporter, "notte_network_request_bytes_total", browser_type="chrome", proxy="true")
        == 120
    )
    assert sample(exporter, "notte_session_duration_seconds_count", browser_type="chrome") == 1
    assert sample(exporter, "notte_session_duration_seconds_sum", browser_type="chrome") == 40
    assert sample(exporter, "notte_sessions_active", browser_type="chrome") == 0

    # The firefox session is abandoned and dies by idle timeout: a leak. So does the session
    # that was running before the exporter started: its end was watched, so it counts.
    clock.advance(4 * 60)
    assert exporter.poll_once().ok
    assert closed(exporter, "firefox", "timed_out", "idle_timeout") == 1
    assert closed(exporter, "chromium", "timed_out", "idle_timeout") == 1
    assert sample(exporter, "notte_sessions_started_total", browser_type="chromium") == 0

    # A session starts and fails between two polls: one start, one end in error.
    brief = account.start_session(browser_type="firefox")
    clock.advance(3)
    account.fail(brief, error="Browser crashed")
    clock.advance(3)
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_sessions_started_total", browser_type="firefox") == 2
    assert closed(exporter, "firefox", "error", "error") == 1

    assert total_closed(exporter) == 4
    assert sample(exporter, "notte_exporter_tracked_sessions", state="pending") == 0
    assert sample(exporter, "notte_exporter_tracked_sessions", state="live") == 0


def test_snapshot_gauges_describe_the_live_sessions(account, clock, make_exporter) -> None:
    start = clock.now()
    account.start_session(browser_type="chrome", solve_captchas=True, headless=False,
                          network_request_bytes=10, network_response_bytes=20)  # fmt: skip
    account.start_session(browser_type="chrome", use_file_storage=True, web_bot_auth=True,
                          error="navigation failed", network_request_bytes=5)  # fmt: skip
    clock.advance(90)
    account.start_session(browser_type="firefox")
    exporter = make_exporter(sessions_limit=25, sessions_idle_threshold=60)
    exporter.poll_once()
    assert sample(exporter, "notte_sessions_active", browser_type="chrome") == 2
    assert sample(exporter, "notte_sessions_active", browser_type="firefox") == 1
    for browser in BROWSERS[3:]:
        assert sample(exporter, "notte_sessions_active", browser_type=browser) == 0
    for feature in ("solve_captchas", "headful", "file_storage", "web_bot_auth"):
        assert sample(exporter, "notte_sessions_active_with_feature", feature=feature) == 1
    assert sample(exporter, "notte_sessions_active_with_feature", feature="proxies") == 0
    assert (
        sample(exporter, "notte_sessions_active_network_request_bytes", browser_type="chrome") == 15
    )
    assert (
        sample(exporter, "notte_sessions_active_network_response_bytes", browser_type="chrome")
        == 20
    )
    assert sample(exporter, "notte_sessions_active_with_error", browser_type="chrome") == 1
    assert sample(exporter, "notte_sessions_active_idle", browser_type="chrome") == 2
    assert sample(exporter, "notte_sessions_active_idle", browser_type="firefox") == 0
    assert sample(exporter, "notte_sessions_oldest_created_timestamp_seconds") == start.timestamp()
    assert sample(exporter, "notte_sessions_limit") == 25


def test_the_limit_is_absent_unless_configured(make_exporter) -> None:
    exporter = make_exporter()
    exporter.poll_once()
    assert sample(exporter, "notte_sessions_limit") is None
    assert sample(exporter, "notte_sessions_oldest_created_timestamp_seconds") is None


def test_sessions_the_platform_failed_to_close_are_overdue(account, clock, make_exporter) -> None:
    account.start_session(enforce_timeouts=False, max_duration_minutes=15, idle_timeout_minutes=3)
    account.start_session()
    exporter = make_exporter(sessions_overdue_grace=60)
    clock.advance(3 * 60 + 59)
    exporter.poll_once()
    assert sample(exporter, "notte_sessions_overdue", reason="idle_timeout") == 0
    clock.advance(2)
    exporter.poll_once()
    assert sample(exporter, "notte_sessions_overdue", reason="idle_timeout") == 1
    assert sample(exporter, "notte_sessions_overdue", reason="max_duration") == 0
    clock.advance(12 * 60)
    exporter.poll_once()
    assert sample(exporter, "notte_sessions_overdue", reason="max_duration") == 1
    # The healthy session was closed by the platform on time and is not overdue.
    assert sample(exporter, "notte_sessions_active", browser_type="chromium") == 1


def test_only_the_n_oldest_live_sessions_carry_their_id(account, clock, make_exporter) -> None:
    ids = []
    for _ in range(5):
        ids.append(account.start_session(browser_type="firefox"))
        clock.advance(1)
    exporter = make_exporter(sessions_detail_limit=2)
    exporter.poll_once()
    for oldest in ids[:2]:
        labels = {"session_id": oldest, "browser_type": "firefox", "status": "active"}
        assert sample(exporter, "notte_session_info", **labels) == 1
        assert sample(exporter, "notte_session_created_timestamp_seconds", session_id=oldest)
        assert sample(exporter, "notte_session_last_accessed_timestamp_seconds", session_id=oldest)
    for newer in ids[2:]:
        assert sample(exporter, "notte_session_created_timestamp_seconds", session_id=newer) is None


def test_a_detail_limit_of_zero_turns_per_session_series_off(account, make_exporter) -> None:
    account.start_session()
    exporter = make_exporter(sessions_detail_limit=0)
    exporter.poll_once()
    assert b"session_id=" not in exporter.exposition()


def test_a_restart_does_not_count_old_traffic_again(account, clock, make_exporter) -> None:
    first = make_exporter()
    session = account.start_session(network_request_bytes=0)
    account.access(session, request_bytes=5000, response_bytes=9000)
    first.poll_once()
    assert (
        sample(first, "notte_network_request_bytes_total", browser_type="chromium", proxy="false")
        == 5000
    )
    clock.advance(30)
    restarted = make_exporter()
    restarted.poll_once()
    assert (
        sample(
            restarted, "notte_network_request_bytes_total", browser_type="chromium", proxy="false"
        )
        == 0
    )
    assert sample(restarted, "notte_sessions_started_total", browser_type="chromium") == 0
    account.access(session, request_bytes=70)
    restarted.poll_once()
    assert (
        sample(
            restarted, "notte_network_request_bytes_total", browser_type="chromium", proxy="false"
        )
        == 70
    )
    account.stop(session)
    restarted.poll_once()
    assert closed(restarted, "chromium", "closed", "manual") == 1


def test_api_failures_mid_scenario_count_nothing_twice_and_never_go_down(
    api, account, clock, make_exporter
) -> None:
    exporter = make_exporter(notte_retries=0)
    sessions = [account.start_session(browser_type="chrome") for _ in range(3)]
    history = []

    def record() -> None:
        history.append(
            (
                total_closed(exporter),
                sample(exporter, "notte_sessions_started_total", browser_type="chrome"),
                sample(
                    exporter,
                    "notte_network_request_bytes_total",
                    browser_type="chrome",
                    proxy="false",
                ),
            )
        )

    exporter.poll_once()
    record()
    for step, session in enumerate(sessions):
        account.access(session, request_bytes=100)
        account.stop(session)
        clock.advance(10)
        api.faults.push(Fault.status(500))
        assert not exporter.poll_once().ok
        record()
        api.faults.push(Fault.latency(0), Fault.status(503, path="/sessions"))
        assert exporter.poll_once().ok  # live list fine, history lookup fails
        record()
        assert exporter.poll_once().ok
        record()
        assert total_closed(exporter) == step + 1
    assert history == sorted(history)
    assert history[-1] == (3, 3, 300)


def test_a_poll_failing_on_a_later_page_counts_what_it_read_and_ends_nothing(
    api, account, clock, make_exporter
) -> None:
    exporter = make_exporter(notte_page_size=1, notte_retries=0, sessions_lookup_budget=0)
    older = account.start_session(browser_type="firefox")
    clock.advance(1)
    newer = account.start_session(browser_type="chrome")  # newest first: page 1
    assert exporter.poll_once().ok
    account.access(newer, request_bytes=100)
    account.access(older, request_bytes=50)
    api.faults.push(Fault.latency(0), Fault.status(500, path="/sessions"))
    assert not exporter.poll_once().ok
    # Page 1's traffic happened, and is counted; the session on the page that failed is
    # still live, not taken for ended.
    assert sample(exporter, "notte_network_request_bytes_total", browser_type="chrome",
                  proxy="false") == 100  # fmt: skip
    assert sample(exporter, "notte_network_request_bytes_total", browser_type="firefox",
                  proxy="false") == 0  # fmt: skip
    assert exporter.tracker.stats().pending == 0
    assert exporter.tracker.stats().live == 2
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_network_request_bytes_total", browser_type="chrome",
                  proxy="false") == 100  # fmt: skip
    assert sample(exporter, "notte_network_request_bytes_total", browser_type="firefox",
                  proxy="false") == 50  # fmt: skip
    assert total_closed(exporter) == 0


def test_an_end_missing_from_history_is_learned_by_id(api, account, make_exporter) -> None:
    exporter = make_exporter()
    session = account.start_session(browser_type="firefox")
    exporter.poll_once()
    account.stop(session)
    empty_history = {"items": [], "page": 1, "page_size": 100, "has_next": False,
                     "has_previous": False}  # fmt: skip
    api.faults.push(Fault.latency(0), Fault.payload(empty_history))
    exporter.poll_once()
    assert closed(exporter, "firefox", "closed", "manual") == 1
    assert [r.path for r in get_requests(api)] == [f"/sessions/{session}"]


def test_a_session_the_api_forgot_ends_as_unknown(api, account, make_exporter) -> None:
    exporter = make_exporter()
    session = account.start_session(browser_type="firefox")
    exporter.poll_once()
    account.remove(session)
    exporter.poll_once()
    assert closed(exporter, "firefox", "unknown", "unknown") == 1


def test_lookups_stay_within_the_per_poll_budget(api, account, make_exporter) -> None:
    exporter = make_exporter(sessions_lookup_budget=3)
    ids = [account.start_session() for _ in range(10)]
    exporter.poll_once()
    for session in ids:
        account.remove(session)
    api.clear_requests()
    exporter.poll_once()
    lookups = [r for r in api.requests if r.path.startswith("/sessions/") or
               r.query.get("only_active") == "false"]  # fmt: skip
    assert len(lookups) == 3
    assert closed(exporter, "chromium", "unknown", "unknown") == 2
    exporter.poll_once()
    exporter.poll_once()
    exporter.poll_once()
    exporter.poll_once()
    assert closed(exporter, "chromium", "unknown", "unknown") == 10


@pytest.mark.slow
def test_a_budget_of_zero_makes_no_lookups_and_gives_up_after_the_pending_timeout(
    api, account, clock, make_exporter
) -> None:
    exporter = make_exporter(sessions_lookup_budget=0, sessions_pending_timeout=15 * 60)
    session = account.start_session()
    exporter.poll_once()
    account.stop(session)
    exporter.poll_once()  # vanished from the live list: pending from now on
    for _ in range(15 * 60):  # however many polls fit in the timeout, it does not give up
        clock.advance(1)
        exporter.poll_once()
    assert closed(exporter, "chromium", "unknown", "unknown") == 0
    clock.advance(1)
    exporter.poll_once()
    assert all(r.query.get("only_active") == "true" for r in api.requests)
    assert closed(exporter, "chromium", "unknown", "unknown") == 1


@pytest.mark.parametrize("browser", ["chrome-beta", "webkit"])
def test_a_new_browser_type_gets_its_own_label(account, make_exporter, browser: str) -> None:
    account.start_session(browser_type=browser)
    exporter = make_exporter()
    exporter.poll_once()
    assert sample(exporter, "notte_sessions_active", browser_type=browser) == 1
    assert sample(exporter, "notte_sessions_started_total", browser_type=browser) == 1


def test_browser_types_beyond_the_bound_fold_into_other(account, make_exporter) -> None:
    for index in range(15):
        account.start_session(browser_type=f"engine-{index}")
    exporter = make_exporter()
    exporter.poll_once()
    assert sample(exporter, "notte_sessions_active", browser_type="other") == 5
    families = {f.name: f for f in exporter.registry.collect()}
    labels = {s.labels["browser_type"] for s in families["notte_sessions_active"].samples}
    assert len(labels) == 5 + 10 + 1


def test_free_text_never_becomes_a_label(account, make_exporter) -> None:
    account.start_session(browser_type="Mozilla/5.0 (X11; Linux x86_64)", error="boom: x=1")
    exporter = make_exporter()
    exporter.poll_once()
    text = exporter.exposition().decode()
    assert "Mozilla" not in text
    assert "boom" not in text


def test_lifecycle_memory_is_released_as_sessions_end(account, clock, make_exporter) -> None:
    exporter = make_exporter()
    for _ in range(30):
        session = account.start_session()
        exporter.poll_once()
        account.stop(session)
        clock.advance(60)
        exporter.poll_once()
    assert sample(exporter, "notte_exporter_tracked_sessions", state="live") == 0
    assert sample(exporter, "notte_exporter_tracked_sessions", state="pending") == 0
    clock.advance(timedelta(hours=26).total_seconds())
    exporter.poll_once()
    assert sample(exporter, "notte_exporter_tracked_sessions", state="ended") == 0


def test_many_pending_ends_are_learned_from_history_pages_past_live_sessions(
    api, account, clock, make_exporter
) -> None:
    ended = [account.start_session(browser_type="firefox") for _ in range(2)]
    clock.advance(1)
    account.start_session()
    account.start_session()
    exporter = make_exporter(notte_page_size=2, sessions_lookup_budget=2)
    exporter.poll_once()
    for session in ended:
        account.stop(session)
    api.clear_requests()
    exporter.poll_once()
    assert closed(exporter, "firefox", "closed", "manual") == 2
    # Two ends, one request left after the first page: the second page, behind the live
    # sessions, holds both; lookups by id could only have learned one.
    assert get_requests(api) == []


def test_a_few_pending_ends_are_looked_up_by_id_rather_than_by_more_pages(
    api, account, clock, make_exporter
) -> None:
    ended = account.start_session(browser_type="firefox")
    clock.advance(1)
    for _ in range(4):
        account.start_session()
    exporter = make_exporter(notte_page_size=2, sessions_lookup_budget=10)
    exporter.poll_once()
    account.stop(ended)
    api.clear_requests()
    exporter.poll_once()
    assert closed(exporter, "firefox", "closed", "manual") == 1
    history = [r for r in api.requests if r.query.get("only_active") == "false"]
    assert len(history) == 1
    assert [r.path for r in get_requests(api)] == [f"/sessions/{ended}"]


def test_a_quiet_account_costs_one_history_request_per_poll(
    api, account, clock, make_exporter
) -> None:
    for _ in range(5):
        account.start_session()
    exporter = make_exporter(notte_page_size=2, sessions_lookup_budget=10)
    exporter.poll_once()
    clock.advance(30)
    api.clear_requests()
    exporter.poll_once()
    pages = [(r.query["only_active"], r.query["page"]) for r in api.requests]
    # The history page goes out alongside the listing (test_parallel_paging), so in any order.
    assert sorted(pages) == [("false", "1"), ("true", "1"), ("true", "2"), ("true", "3")]


def test_sessions_that_began_and_ended_since_the_last_poll_are_found_on_later_pages(
    api, account, clock, make_exporter
) -> None:
    exporter = make_exporter(notte_page_size=2, sessions_lookup_budget=10)
    exporter.poll_once()
    clock.advance(1)
    for _ in range(5):
        account.stop(account.start_session(browser_type="chrome"))
    exporter.poll_once()
    assert sample(exporter, "notte_sessions_started_total", browser_type="chrome") == 5
    assert closed(exporter, "chrome", "closed", "manual") == 5


def test_session_ids_are_escaped_in_lookup_urls(api, account, make_exporter) -> None:
    exporter = make_exporter()
    session = account.start_session(session_id="a/b?c", browser_type="firefox")
    exporter.poll_once()
    account.remove(session)
    api.clear_requests()
    exporter.poll_once()
    assert [r.path for r in get_requests(api)] == ["/sessions/a%2Fb%3Fc"]
    assert closed(exporter, "firefox", "unknown", "unknown") == 1
