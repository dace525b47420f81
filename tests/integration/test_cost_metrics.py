"""Browser time, idle waste and proxied traffic over many polls against the simulator, exactly.

These counters come from the sessions the exporter already lists (no extra requests), so
they are only as good as the ends it learns: the last tests make lookups fail and check that
ends are still learned, not given up as ``unknown``.
"""

import pytest

from notte_exporter.simulator import Fault, SimulatedAccount, SimulatorServer
from support import API_KEY, closed, sample


def browser_seconds(exporter, browser: str = "chromium") -> float | None:
    return sample(exporter, "notte_sessions_browser_seconds_total", browser_type=browser)


def idle_seconds(exporter, reason: str, browser: str = "chromium") -> float | None:
    return sample(
        exporter, "notte_sessions_idle_seconds_total", browser_type=browser, close_reason=reason
    )


def run_polls(exporter, clock, seconds: float, interval: float = 30) -> None:
    for _ in range(int(seconds // interval)):
        clock.advance(interval)
        assert exporter.poll_once().ok


def test_180_idle_seconds_before_an_idle_timeout_add_exactly_180(
    account, clock, make_exporter
) -> None:
    exporter = make_exporter()
    session = account.start_session(browser_type="firefox", idle_timeout_minutes=3)
    exporter.poll_once()
    clock.advance(47)
    account.access(session)  # last use; then nobody touches it until the platform closes it
    run_polls(exporter, clock, 10 * 60)
    assert closed(exporter, "firefox", "timed_out", "idle_timeout") == 1
    assert idle_seconds(exporter, "idle_timeout", "firefox") == 180
    assert idle_seconds(exporter, "manual", "firefox") == 0


def test_browser_seconds_of_a_watched_session_equal_its_duration(
    account, clock, make_exporter
) -> None:
    exporter = make_exporter()
    exporter.poll_once()
    clock.advance(7)
    session = account.start_session(idle_timeout_minutes=30, max_duration_minutes=60)
    run_polls(exporter, clock, 5 * 60)
    clock.advance(13)
    account.stop(session)
    run_polls(exporter, clock, 90)
    duration = 5 * 60 + 13
    assert closed(exporter, "chromium", "closed", "manual") == 1
    assert browser_seconds(exporter) == pytest.approx(duration, abs=30)
    assert browser_seconds(exporter) == duration  # learned from closed_at: exact here


def test_browser_seconds_accrue_with_every_poll_at_the_number_of_open_browsers(
    account, clock, make_exporter
) -> None:
    for _ in range(3):
        account.start_session(browser_type="chrome", idle_timeout_minutes=30)
    exporter = make_exporter()
    exporter.poll_once()
    before = browser_seconds(exporter, "chrome")
    run_polls(exporter, clock, 10 * 60)
    assert browser_seconds(exporter, "chrome") == before + 3 * 600


def test_a_leaked_session_is_billed_its_idle_wait(account, clock, make_exporter) -> None:
    exporter = make_exporter()
    exporter.poll_once()
    session = account.start_session(idle_timeout_minutes=5)
    clock.advance(60)
    account.access(session)
    run_polls(exporter, clock, 10 * 60)
    assert browser_seconds(exporter) == 60 + 300
    assert idle_seconds(exporter, "idle_timeout") == 300


def test_a_restart_counts_only_browser_time_after_it(account, clock, make_exporter) -> None:
    session = account.start_session(idle_timeout_minutes=30, max_duration_minutes=60)
    clock.advance(20 * 60)
    restarted = make_exporter()
    restarted.poll_once()
    assert browser_seconds(restarted) == 0
    run_polls(restarted, clock, 60)
    account.stop(session)
    run_polls(restarted, clock, 60)
    assert browser_seconds(restarted) == 60
    assert idle_seconds(restarted, "manual") == 60  # since the restart, not since the access


def test_proxied_traffic_carries_proxy_true(account, clock, make_exporter) -> None:
    proxied = account.start_session(browser_type="chrome", proxies=True)
    direct = account.start_session(browser_type="chrome")
    exporter = make_exporter()
    exporter.poll_once()
    account.access(proxied, request_bytes=10, response_bytes=4000)
    account.access(direct, request_bytes=1, response_bytes=30)
    exporter.poll_once()

    def traffic(direction: str, proxy: str) -> float | None:
        return sample(
            exporter, f"notte_network_{direction}_bytes_total", browser_type="chrome", proxy=proxy
        )

    assert (traffic("request", "true"), traffic("response", "true")) == (10, 4000)
    assert (traffic("request", "false"), traffic("response", "false")) == (1, 30)


EMPTY_HISTORY = {"items": [], "page": 1, "page_size": 100, "has_next": False,
                 "has_previous": False}  # fmt: skip


def test_a_failed_lookup_does_not_abandon_the_others(api, account, clock, make_exporter) -> None:
    ids = [account.start_session(browser_type="firefox") for _ in range(3)]
    exporter = make_exporter(notte_retries=1)
    exporter.poll_once()
    for session in ids:
        account.stop(session)
    # The history page shows nothing; the first lookup by id fails even after its retry.
    api.faults.push(
        Fault.latency(0, path="/sessions", exact=True),
        Fault.payload(EMPTY_HISTORY, path="/sessions", exact=True),
        Fault.status(500, path=f"/sessions/{ids[0]}", exact=True, times=2),
    )
    assert exporter.poll_once().ok
    assert closed(exporter, "firefox", "closed", "manual") == 2
    assert sample(exporter, "notte_exporter_tracked_sessions", state="pending") == 1
    exporter.poll_once()
    assert closed(exporter, "firefox", "closed", "manual") == 3


def test_a_lookup_by_id_is_retried(api, account, make_exporter) -> None:
    session = account.start_session(browser_type="firefox")
    exporter = make_exporter(notte_retries=2)
    exporter.poll_once()
    account.stop(session)
    api.faults.push(
        Fault.latency(0, path="/sessions", exact=True),
        Fault.payload(EMPTY_HISTORY, path="/sessions", exact=True),
        Fault.status(503, path="/sessions/", times=2),
    )
    exporter.poll_once()
    assert closed(exporter, "firefox", "closed", "manual") == 1
    assert sample(exporter, "notte_api_retries_total", endpoint="/sessions/{session_id}") == 2


def test_ends_survive_many_fast_failing_polls_within_the_pending_timeout(
    api, account, clock, make_exporter
) -> None:
    session = account.start_session(browser_type="firefox", proxies=True)
    exporter = make_exporter(poll_interval=1, notte_retries=0)
    exporter.poll_once()
    clock.advance(1)
    account.access(session, response_bytes=9000)
    clock.advance(1)
    account.stop(session)
    # A minute of 1 s polls whose lookups all fail (ten polls used to be the limit).
    for _ in range(60):
        clock.advance(1)
        api.faults.push(
            Fault.latency(0, path="/sessions", exact=True),
            Fault.status(503, path="/sessions", exact=True),
            Fault.status(503, path="/sessions/"),
        )
        assert exporter.poll_once().ok
    assert closed(exporter, "firefox", "unknown", "unknown") == 0
    clock.advance(1)
    exporter.poll_once()
    assert closed(exporter, "firefox", "closed", "manual") == 1
    assert browser_seconds(exporter, "firefox") == 2
    assert (
        sample(exporter, "notte_network_response_bytes_total", browser_type="firefox", proxy="true")
        == 9000
    )


def total(exporter, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in exporter.registry.collect()
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.slow
def test_the_sped_up_leak_profile_wastes_and_spends_enough_for_the_cost_alerts(
    clock, make_exporter
) -> None:
    """What the end-to-end test relies on: the leak demo at speed 60, polled every second.

    Within four wall minutes: more than 25% of the browser seconds are idle time of sessions
    closed by idle timeout, and more than ten minutes of it (NotteIdleWasteHigh); spend at
    the rate since the start passes the credits long before the month ends
    (NotteSpendForecastOverLimit).
    """
    account = SimulatedAccount(clock=clock, profile="leak", seed=1, speed=60)
    with SimulatorServer(account, api_key=API_KEY, rate_limit=None) as server:
        exporter = make_exporter(
            notte_api_url=server.url, collector_usage=True, poll_interval=1, usage_interval=1
        )
        exporter.poll_once()
        spent_at_start = total(exporter, "notte_usage_total_cost_dollars")
        run_polls(exporter, clock, 4 * 60, interval=1)
        browser = total(exporter, "notte_sessions_browser_seconds_total")
        idle = total(exporter, "notte_sessions_idle_seconds_total", close_reason="idle_timeout")
        spent = total(exporter, "notte_usage_total_cost_dollars")
        limit = total(exporter, "notte_usage_limit_dollars")
        exporter.stop()
    assert idle / browser > 0.25
    assert idle > 600
    burn_per_second = (spent - spent_at_start) / (4 * 60)
    seconds_to_limit = (limit - spent) / burn_per_second
    assert seconds_to_limit < 10 * 60  # at this speed the credits are gone in minutes
    assert total(exporter, "notte_sessions_closed_total", close_reason="unknown") == 0


@pytest.mark.slow
def test_browser_seconds_and_proxied_bytes_agree_with_the_simulators_bill(
    clock, make_exporter
) -> None:
    """Two views of one bill: the exporter's counters times the rates, and GET /usage."""
    account = SimulatedAccount(clock=clock, profile="leak", seed=1, speed=1)
    plan = account.usage_plan
    with SimulatorServer(account, api_key=API_KEY, rate_limit=None) as server:
        exporter = make_exporter(notte_api_url=server.url, collector_usage=True, usage_interval=30)
        exporter.poll_once()
        billed_before = account.usage()
        run_polls(exporter, clock, 3600)
        billed = account.usage()
        seconds = total(exporter, "notte_sessions_browser_seconds_total")
        proxied = total(exporter, "notte_network_request_bytes_total", proxy="true") + total(
            exporter, "notte_network_response_bytes_total", proxy="true"
        )
        exporter.stop()
    browser_cost = billed["browser_usage_cost"] - billed_before["browser_usage_cost"]
    proxy_cost = billed["proxy_usage_cost"] - billed_before["proxy_usage_cost"]
    assert seconds / 3600 * plan.browser_rate_per_hour == pytest.approx(browser_cost, rel=0.02)
    assert proxied / 1e9 * plan.proxy_rate_per_gb == pytest.approx(proxy_cost, rel=0.02)
