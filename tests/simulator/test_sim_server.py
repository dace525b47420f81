"""The simulated API over real loopback HTTP: routes, pagination, validation, auth, limits."""

from __future__ import annotations

import signal
from typing import Any

import httpx
import pytest

from notte_exporter.simulator import ManualClock, SimulatedAccount, SimulatorServer

API_KEY = "test-key"  # the key of the conftest server


def _start(account: SimulatedAccount, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        ids.append(account.start_session())
        account.advance(1)
    return ids


def test_list_follows_the_paginated_response_schema(
    account: SimulatedAccount, client: httpx.Client
) -> None:
    session_id = account.start_session()
    response = client.get("/sessions")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"items", "page", "page_size", "has_next", "has_previous"}
    assert body["page"] == 1
    assert body["page_size"] == 10
    assert [item["session_id"] for item in body["items"]] == [session_id]


def test_pages_cover_every_session_once_newest_first(
    account: SimulatedAccount, client: httpx.Client
) -> None:
    ids = _start(account, 5)
    seen: list[str] = []
    pages = []
    page = 1
    while True:
        body = client.get("/sessions", params={"page": page, "page_size": 2}).json()
        pages.append((body["has_next"], body["has_previous"]))
        seen += [item["session_id"] for item in body["items"]]
        if not body["has_next"]:
            break
        page += 1
    assert seen == ids[::-1]
    assert pages == [(True, False), (True, True), (False, True)]


def test_page_past_the_end_is_empty(account: SimulatedAccount, client: httpx.Client) -> None:
    _start(account, 2)
    body = client.get("/sessions", params={"page": 9, "page_size": 2}).json()
    assert body["items"] == []
    assert body["has_next"] is False


def test_trailing_slash_lists_too(account: SimulatedAccount, client: httpx.Client) -> None:
    session_id = account.start_session()
    body = client.get("/sessions/", params={"page_size": 100}).json()
    assert [item["session_id"] for item in body["items"]] == [session_id]


def test_only_active_false_includes_closed_history(
    account: SimulatedAccount, client: httpx.Client
) -> None:
    live, stopped, failed = _start(account, 3)
    account.stop(stopped)
    account.fail(failed)
    active = client.get("/sessions", params={"only_active": "true"}).json()["items"]
    everything = client.get("/sessions", params={"only_active": "false"}).json()["items"]
    assert [item["session_id"] for item in active] == [live]
    assert {item["session_id"]: item["status"] for item in everything} == {
        live: "active",
        stopped: "closed",
        failed: "error",
    }


def test_other_accepted_parameters_do_not_change_the_list(
    account: SimulatedAccount, client: httpx.Client
) -> None:
    session_id = account.start_session()
    params = {"only_current_token": "true", "include_system": "false", "future": "x"}
    items = client.get("/sessions", params=params).json()["items"]
    assert [item["session_id"] for item in items] == [session_id]


@pytest.mark.parametrize(
    ("params", "loc", "error_type"),
    [
        ({"page": "0"}, ["query", "page"], "greater_than_equal"),
        ({"page_size": "101"}, ["query", "page_size"], "less_than_equal"),
        ({"page_size": "0"}, ["query", "page_size"], "greater_than_equal"),
        ({"page": "abc"}, ["query", "page"], "int_parsing"),
        ({"only_active": "maybe"}, ["query", "only_active"], "bool_parsing"),
    ],
)
def test_invalid_parameters_give_a_fastapi_422(
    client: httpx.Client, params: dict[str, str], loc: list[str], error_type: str
) -> None:
    response = client.get("/sessions", params=params)
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["loc"] == loc
    assert detail["type"] == error_type
    assert isinstance(detail["msg"], str)


def test_every_invalid_parameter_is_reported(client: httpx.Client) -> None:
    response = client.get("/sessions", params={"page": "0", "page_size": "101"})
    locs = [detail["loc"] for detail in response.json()["detail"]]
    assert locs == [["query", "page"], ["query", "page_size"]]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}],
    ids=["no-key", "wrong-key", "no-bearer-scheme"],
)
def test_missing_or_wrong_key_gives_notte_401(
    server: SimulatorServer, headers: dict[str, str]
) -> None:
    response = httpx.get(f"{server.url}/sessions", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Authentication failed. Please check your credentials."}


def test_get_by_id_returns_final_state(account: SimulatedAccount, client: httpx.Client) -> None:
    session_id = account.start_session()
    account.advance(5)
    account.stop(session_id)
    body = client.get(f"/sessions/{session_id}").json()
    assert body["session_id"] == session_id
    assert body["status"] == "closed"
    assert body["close_reason"] == "manual"
    assert body["duration"] == "PT5S"


def test_get_by_id_needs_auth(account: SimulatedAccount, server: SimulatorServer) -> None:
    session_id = account.start_session()
    assert httpx.get(f"{server.url}/sessions/{session_id}").status_code == 401


def test_get_unknown_or_removed_session_is_404(
    account: SimulatedAccount, client: httpx.Client
) -> None:
    session_id = account.start_session()
    account.remove(session_id)
    for unknown in (session_id, "nope"):
        response = client.get(f"/sessions/{unknown}")
        assert response.status_code == 404
        assert response.json() == {"detail": "Session not found"}


def test_unknown_route_is_404_and_other_methods_405(client: httpx.Client) -> None:
    assert client.get("/usage/nothing/here").status_code == 404
    assert client.post("/sessions").status_code == 405


def test_health_needs_no_key(server: SimulatorServer) -> None:
    response = httpx.get(f"{server.url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_every_response_carries_rate_limit_headers(
    clock: ManualClock, server: SimulatorServer, client: httpx.Client
) -> None:
    first = client.get("/sessions")
    second = httpx.get(f"{server.url}/sessions")  # even a 401
    assert first.headers["x-ratelimit-limit"] == "100"
    assert first.headers["x-ratelimit-remaining"] == "99"
    assert second.headers["x-ratelimit-remaining"] == "98"
    # Fixed one-minute windows on the account clock: 10:00:00 + 60 s.
    assert int(first.headers["x-ratelimit-reset"]) == int(clock.now().timestamp()) + 60


def test_requests_over_the_limit_get_429_until_the_window_resets(
    account: SimulatedAccount, clock: ManualClock
) -> None:
    with (
        SimulatorServer(account, api_key=API_KEY, rate_limit=2, rate_window=10) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as http,
    ):
        codes = [http.get("/sessions").status_code for _ in range(3)]
        limited = http.get("/sessions")
        clock.advance(10)
        after_reset = http.get("/sessions")
    assert codes == [200, 200, 429]
    assert limited.json() == {
        "message": "Rate limit exceeded",
        "detail": "Please wait before making more requests",
    }
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert after_reset.status_code == 200
    assert after_reset.headers["x-ratelimit-remaining"] == "1"


def test_rate_limit_off_sends_no_headers(account: SimulatedAccount) -> None:
    with SimulatorServer(account, rate_limit=None) as server:
        response = httpx.get(f"{server.url}/sessions")
    assert response.status_code == 200
    assert "x-ratelimit-limit" not in response.headers


def test_requests_are_recorded(server: SimulatorServer, client: httpx.Client) -> None:
    assert server.requests == []
    client.get(
        "/sessions",
        params={"page_size": 100, "only_active": "true"},
        headers={"User-Agent": "notte-exporter/0.1.0", "x-notte-request-origin": "exporter"},
    )
    (request,) = server.requests
    assert request.method == "GET"
    assert request.path == "/sessions"
    assert request.query == {"page_size": "100", "only_active": "true"}
    assert request.headers["user-agent"] == "notte-exporter/0.1.0"
    assert request.headers["x-notte-request-origin"] == "exporter"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    server.clear_requests()
    assert server.requests == []


def test_server_without_key_accepts_anyone(account: SimulatedAccount) -> None:
    with SimulatorServer(account) as server:
        assert httpx.get(f"{server.url}/sessions").status_code == 200


def test_server_can_restart_after_stop(account: SimulatedAccount) -> None:
    server = SimulatorServer(account)
    server.start()
    server.stop()
    server.stop()  # idempotent
    with server:
        assert httpx.get(f"{server.url}/health").status_code == 200


def test_server_threads_leave_shutdown_signals_to_the_main_thread(
    account: SimulatedAccount,
    server: SimulatorServer,
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A signal delivered to a server thread would not wake a main thread in Event.wait()."""
    masks: list[set[int | signal.Signals]] = []
    page = account.page

    def recording_page(*args: Any, **kwargs: Any) -> dict[str, Any]:
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        return page(*args, **kwargs)

    monkeypatch.setattr(account, "page", recording_page)
    assert client.get("/sessions").status_code == 200
    assert {signal.SIGINT, signal.SIGTERM} <= masks[0]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
