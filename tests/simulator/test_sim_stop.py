"""DELETE /sessions/{session_id}/stop: the SDK's session_stop, as the simulator answers it."""

from __future__ import annotations

import httpx

from notte_exporter.simulator import SimulatedAccount, SimulatorServer

API_KEY = "test-key"  # the key of the conftest server


def test_a_stop_closes_the_session_manually_and_answers_its_state(
    account: SimulatedAccount, client: httpx.Client
) -> None:
    session_id = account.start_session()
    response = client.delete(f"/sessions/{session_id}/stop")
    assert response.status_code == 200
    body = response.json()
    assert (body["session_id"], body["status"], body["close_reason"]) == (
        session_id,
        "closed",
        "manual",
    )
    assert body["closed_at"] is not None
    assert account.session_ids() == []


def test_a_stop_takes_close_reason_error(account: SimulatedAccount, client: httpx.Client) -> None:
    session_id = account.start_session()
    response = client.delete(f"/sessions/{session_id}/stop", params={"close_reason": "error"})
    assert response.json()["close_reason"] == "error"


def test_an_unknown_close_reason_is_422_like_fastapi(
    account: SimulatedAccount, client: httpx.Client
) -> None:
    session_id = account.start_session()
    response = client.delete(f"/sessions/{session_id}/stop", params={"close_reason": "bored"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "close_reason"]
    assert account.session_ids() == [session_id]


def test_stopping_a_stopped_session_says_it_is_already_closed(
    account: SimulatedAccount, client: httpx.Client
) -> None:
    session_id = account.start_session()
    account.stop(session_id)
    response = client.delete(f"/sessions/{session_id}/stop")
    assert response.status_code == 400
    assert "already closed" in response.json()["detail"]


def test_stopping_an_unknown_session_is_404(client: httpx.Client) -> None:
    response = client.delete("/sessions/nope/stop")
    assert response.status_code == 404
    assert response.json() == {"detail": "Session not found"}


def test_the_stop_route_takes_delete_only_and_the_key(
    account: SimulatedAccount, server: SimulatorServer, client: httpx.Client
) -> None:
    session_id = account.start_session()
    assert client.get(f"/sessions/{session_id}/stop").status_code == 405
    assert client.delete(f"/sessions/{session_id}").status_code == 405
    assert httpx.delete(f"{server.url}/sessions/{session_id}/stop").status_code == 401
    assert account.session_ids() == [session_id]


def test_a_stop_is_recorded_with_its_method(
    account: SimulatedAccount, server: SimulatorServer, client: httpx.Client
) -> None:
    session_id = account.start_session()
    client.delete(f"/sessions/{session_id}/stop")
    (request,) = server.requests
    assert (request.method, request.path) == ("DELETE", f"/sessions/{session_id}/stop")
