"""Named keys of a simulated account: who started what, only_current_token, revocation,
rotation, the autopilot's share per key, a leaking key, and the truth kept per key."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from notte_exporter.simulator import (
    Fault,
    ManualClock,
    SimulatedAccount,
    SimulatedKey,
    SimulatorServer,
)

API_KEY = "test-key"  # the key of the conftest server


def listed(server: SimulatorServer, key: str, **params: str) -> list[str]:
    response = httpx.get(
        f"{server.url}/sessions",
        params={"page_size": "100", **params},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return [item["session_id"] for item in response.json()["items"]]


def status_with(server: SimulatorServer, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(f"{server.url}/sessions", headers=headers).status_code


def test_only_current_token_lists_the_sessions_of_the_key_that_asks(
    account: SimulatedAccount, server: SimulatorServer
) -> None:
    crawler = account.issue_key("crawler")
    checkout = account.issue_key("checkout")
    mine = account.start_session()
    crawled = account.start_session(key="crawler")
    bought = account.start_session(key="checkout")
    assert listed(server, crawler, only_current_token="true") == [crawled]
    assert listed(server, checkout, only_current_token="true") == [bought]
    assert listed(server, API_KEY, only_current_token="true") == [mine]
    assert set(listed(server, crawler)) == {mine, crawled, bought}
    assert set(listed(server, API_KEY)) == {mine, crawled, bought}


def test_a_revoked_key_answers_401_until_it_is_reinstated(
    account: SimulatedAccount, server: SimulatorServer
) -> None:
    crawler = account.issue_key("crawler")
    account.start_session(key="crawler")
    account.revoke_key("crawler")
    assert status_with(server, crawler) == 401
    assert status_with(server, API_KEY) == 200
    account.reinstate_key("crawler")
    assert status_with(server, crawler) == 200


def test_a_rotated_key_refuses_its_old_value_and_keeps_its_sessions(
    account: SimulatedAccount, server: SimulatorServer
) -> None:
    old = account.issue_key("crawler", "sk-old-value")
    session = account.start_session(key="crawler")
    new = account.rotate_key("crawler", "sk-new-value")
    assert status_with(server, old) == 401
    assert listed(server, new, only_current_token="true") == [session]
    assert server.requests[-1].key == "crawler"


def test_a_server_without_an_account_key_still_refuses_a_revoked_key(
    account: SimulatedAccount,
) -> None:
    crawler = account.issue_key("crawler")
    account.revoke_key("crawler")
    with SimulatorServer(account, api_key=None, stop_poll_interval=0.005) as open_server:
        assert status_with(open_server, crawler) == 401
        assert status_with(open_server, "anything") == 200


def test_a_fault_for_a_key_hits_only_that_keys_requests(
    account: SimulatedAccount, server: SimulatorServer
) -> None:
    crawler = account.issue_key("crawler")
    server.faults.push(Fault.status(503).for_key("crawler"))
    assert status_with(server, API_KEY) == 200
    assert status_with(server, crawler) == 503
    assert status_with(server, crawler) == 200


def test_the_truth_of_a_key_counts_its_sessions_only(
    account: SimulatedAccount, clock: ManualClock
) -> None:
    account.issue_key("crawler")
    crawled = account.start_session(key="crawler", idle_timeout_minutes=3)
    mine = account.start_session()
    account.advance(30)
    account.access(crawled, request_bytes=10, response_bytes=100)
    account.access(mine, request_bytes=1)
    account.advance(30)
    account.stop(mine)
    account.advance(240)  # the crawler's session is left to its idle timeout
    truth = account.truth("crawler")
    assert (truth.starts, truth.live) == (1, 0)
    assert truth.ends == Counter({("timed_out", "idle_timeout"): 1})
    assert (truth.request_bytes, truth.response_bytes) == (10, 100)
    assert truth.browser_seconds == 30 + 180
    assert truth.idle_seconds == {"idle_timeout": 180.0}
    own = account.truth()
    assert (own.starts, own.ends, own.request_bytes) == (1, Counter({("closed", "manual"): 1}), 1)
    assert own.browser_seconds == 60
    assert own.idle_seconds == {"manual": 30.0}


def test_the_truth_of_a_live_session_runs_to_now(account: SimulatedAccount) -> None:
    account.issue_key("crawler")
    session = account.start_session(key="crawler")
    account.advance(20)
    account.access(session, response_bytes=5)
    truth = account.truth("crawler")
    assert (truth.live, truth.browser_seconds, truth.response_bytes, truth.ends) == (
        1,
        20,
        5,
        Counter(),
    )


def test_the_autopilot_starts_each_keys_share_and_a_leaking_key_never_stops_one(
    clock: ManualClock,
) -> None:
    keys = (
        SimulatedKey("checkout", share=0.3),
        SimulatedKey("crawler", share=0.3, leaks=True),
        SimulatedKey("reports", share=0.2),
    )
    account = SimulatedAccount(clock=clock, seed=3, profile="steady", keys=keys)
    for _ in range(24 * 12):
        account.advance(300)
    starts = {name: account.truth(name).starts for name in ("checkout", "crawler", "reports")}
    starts["account"] = account.truth().starts
    total = sum(starts.values())
    assert total > 250
    for name, share in (("checkout", 0.3), ("crawler", 0.3), ("reports", 0.2), ("account", 0.2)):
        assert starts[name] / total == pytest.approx(share, abs=0.06), name
    leaked = account.truth("crawler").ends
    assert {reason for _, reason in leaked} <= {"idle_timeout", "max_duration"}
    assert leaked[("timed_out", "idle_timeout")] > 0.9 * sum(leaked.values())
    assert account.truth("checkout").ends[("closed", "manual")] > 0


def test_keys_are_checked_when_used(account: SimulatedAccount) -> None:
    account.issue_key("crawler", share=0.7)
    with pytest.raises(KeyError, match="no key named 'nobody'"):
        account.start_session(key="nobody")
    with pytest.raises(ValueError, match="issued already"):
        account.issue_key("crawler")
    with pytest.raises(ValueError, match="more than 1"):
        account.issue_key("other", share=0.5)
