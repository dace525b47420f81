"""GET /usage of the simulator: a bill consistent with its own sessions, plan and rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from notte_exporter.api.models import UsageReport
from notte_exporter.simulator import (
    Fault,
    ManualClock,
    SimulatedAccount,
    SimulatorServer,
    UsagePlan,
)

START = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)  # the conftest clock's start

SDK_FIELDS = {
    "plan_type", "period", "session_count", "function_count", "browser_usage_cost",
    "proxy_usage_cost", "llm_usage_cost", "function_usage_cost", "total_cost",
    "subscription_limit_amount", "topup_limit_amount", "subscription_balance_amount",
    "topup_balance_amount", "balance_amount", "is_usage_limit_exceeded",
}  # fmt: skip


def test_usage_has_the_sdk_fields_and_reads_as_a_usage_report(client: httpx.Client) -> None:
    response = client.get("/usage")
    assert response.status_code == 200
    assert set(response.json()) == SDK_FIELDS
    report = UsageReport.model_validate(response.json())
    assert report.period == "May 2026"
    assert report.total_cost == 0


def test_usage_needs_the_key(server: SimulatorServer) -> None:
    assert httpx.get(f"{server.url}/usage").status_code == 401


def test_browser_cost_accrues_with_open_browser_time(account: SimulatedAccount) -> None:
    first = account.start_session(idle_timeout_minutes=120, max_duration_minutes=240)
    account.advance(1800)
    account.start_session(idle_timeout_minutes=120, max_duration_minutes=240)
    account.advance(1800)
    account.stop(first)
    account.advance(3600)  # only the second is open now
    # 1 h of the first, 1.5 h of the second at $0.10 an hour.
    assert account.usage()["browser_usage_cost"] == pytest.approx(0.25)


def test_an_idle_session_is_billed_until_its_idle_timeout_closes_it(
    account: SimulatedAccount,
) -> None:
    account.start_session(idle_timeout_minutes=3)
    account.advance(3600)
    assert account.usage()["browser_usage_cost"] == pytest.approx(0.10 * 180 / 3600)


def test_proxy_cost_accrues_with_proxied_bytes_only(account: SimulatedAccount) -> None:
    proxied = account.start_session(proxies=True)
    direct = account.start_session()
    account.access(proxied, request_bytes=100_000_000, response_bytes=400_000_000)
    account.access(direct, response_bytes=900_000_000)
    assert account.usage()["proxy_usage_cost"] == pytest.approx(0.5 * 4.0)


def test_rates_and_limits_come_from_the_plan(clock: ManualClock) -> None:
    plan = UsagePlan(
        plan_type="growth",
        subscription_limit=10.0,
        topup_limit=5.0,
        browser_rate_per_hour=12.0,
        opening_cost={"llm": 2.0},
    )
    account = SimulatedAccount(clock=clock, usage_plan=plan)
    account.start_session(idle_timeout_minutes=120, max_duration_minutes=240)
    account.advance(3600)
    usage = account.usage()
    assert usage["browser_usage_cost"] == pytest.approx(12.0)
    assert usage["total_cost"] == pytest.approx(14.0)
    assert usage["subscription_balance_amount"] == 0
    assert usage["topup_balance_amount"] == pytest.approx(1.0)
    assert usage["balance_amount"] == pytest.approx(1.0)
    assert usage["is_usage_limit_exceeded"] is False
    account.advance(600)
    assert account.usage()["is_usage_limit_exceeded"] is True


def test_speed_bills_simulated_time(clock: ManualClock) -> None:
    account = SimulatedAccount(clock=clock, speed=60)
    account.start_session(idle_timeout_minutes=60, max_duration_minutes=120)
    account.advance(60)  # one wall minute is one simulated hour
    assert account.usage()["browser_usage_cost"] == pytest.approx(0.10)


def test_a_session_forgotten_by_the_api_stays_billed(account: SimulatedAccount) -> None:
    session = account.start_session(idle_timeout_minutes=60)
    account.advance(360)
    account.remove(session)
    account.advance(360)
    assert account.usage()["browser_usage_cost"] == pytest.approx(0.01)


def test_sessions_before_the_account_started_are_in_the_opening_spend(
    clock: ManualClock,
) -> None:
    account = SimulatedAccount(clock=clock, profile="leak", seed=1)
    opening = account.usage_plan.opening_cost
    assert account.usage()["total_cost"] == pytest.approx(sum(opening.values()))


def test_the_month_rollover_starts_a_new_period_near_zero(clock: ManualClock) -> None:
    clock.set(START.replace(day=31, hour=23))
    account = SimulatedAccount(clock=clock, profile="steady", seed=1)
    before = account.usage()["total_cost"]
    assert before > 100
    account.advance(3600 + 60)
    usage = account.usage()
    assert usage["period"] == "June 2026"
    assert usage["total_cost"] < before / 50  # the first hour of June only
    assert usage["llm_usage_cost"] == 0


@pytest.mark.parametrize("profile", ["steady", "leak"])
def test_the_autopilot_spends_while_sessions_run(clock: ManualClock, profile) -> None:
    account = SimulatedAccount(clock=clock, profile=profile, seed=1, speed=60)
    before = account.usage()
    account.advance(60)
    after = account.usage()
    assert after["browser_usage_cost"] > before["browser_usage_cost"]
    assert after["proxy_usage_cost"] > before["proxy_usage_cost"]
    assert after["session_count"] > before["session_count"]


def test_faults_are_injected_on_usage_like_on_any_path(
    server: SimulatorServer, client: httpx.Client
) -> None:
    server.faults.push(Fault.status(403, path="/usage"))
    assert client.get("/usage").status_code == 403
    assert client.get("/usage").status_code == 200
    assert client.get("/sessions").status_code == 200


def test_the_simulator_never_refuses_work_with_402(clock: ManualClock) -> None:
    plan = UsagePlan(subscription_limit=0.01)
    account = SimulatedAccount(clock=clock, usage_plan=plan)
    with SimulatorServer(account, api_key="k") as server:
        account.start_session(idle_timeout_minutes=60)
        account.advance(timedelta(hours=1).total_seconds())
        headers = {"Authorization": "Bearer k"}
        usage = httpx.get(f"{server.url}/usage", headers=headers).json()
        assert usage["is_usage_limit_exceeded"] is True
        assert httpx.get(f"{server.url}/sessions", headers=headers).status_code == 200
