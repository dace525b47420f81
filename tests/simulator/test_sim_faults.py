"""Per-request fault injection."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from notte_exporter.simulator import Fault, SimulatedAccount, SimulatorServer

API_KEY = "test-key"  # the key of the conftest server


def test_status_fault_sends_code_body_and_headers(
    client: httpx.Client, server: SimulatorServer
) -> None:
    server.faults.push(Fault.status(503, {"detail": "down"}, {"Retry-After": "7"}))
    response = client.get("/sessions")
    assert response.status_code == 503
    assert response.json() == {"detail": "down"}
    assert response.headers["retry-after"] == "7"
    assert "x-ratelimit-limit" in response.headers
    assert client.get("/sessions").status_code == 200  # used up


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (529, {"message": "Cluster overloaded \u2013 Too many sessions"}),
        (
            429,
            {"message": "Rate limit exceeded", "detail": "Please wait before making more requests"},
        ),
        (500, {"detail": "Internal Server Error"}),
        (403, {"detail": "Forbidden"}),
    ],
)
def test_status_fault_defaults_to_the_api_body(
    client: httpx.Client, server: SimulatorServer, code: int, body: dict[str, str]
) -> None:
    server.faults.push(Fault.status(code))
    response = client.get("/sessions")
    assert response.status_code == code
    assert response.json() == body


def test_status_fault_with_text_body(client: httpx.Client, server: SimulatorServer) -> None:
    server.faults.push(Fault.status(502, "<html>Bad Gateway</html>", content_type="text/html"))
    response = client.get("/sessions")
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert response.text == "<html>Bad Gateway</html>"


def test_fault_overrides_rate_limit_headers(client: httpx.Client, server: SimulatorServer) -> None:
    server.faults.push(Fault.status(429, headers={"X-RateLimit-Reset": "123"}))
    assert client.get("/sessions").headers["x-ratelimit-reset"] == "123"


def test_faults_are_consumed_fifo(client: httpx.Client, server: SimulatorServer) -> None:
    server.faults.push(Fault.status(500), Fault.status(502))
    codes = [client.get("/sessions").status_code for _ in range(3)]
    assert codes == [500, 502, 200]


def test_fault_times_repeats_it(client: httpx.Client, server: SimulatorServer) -> None:
    server.faults.push(Fault.status(503, times=2))
    codes = [client.get("/sessions").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert len(server.faults) == 0


def test_fault_path_filter_skips_other_requests(
    account: SimulatedAccount, client: httpx.Client, server: SimulatorServer
) -> None:
    session_id = account.start_session()
    server.faults.push(Fault.status(500, path=f"/sessions/{session_id}"))
    assert client.get("/sessions").status_code == 200
    assert client.get(f"/sessions/{session_id}").status_code == 500


def test_exact_path_filter_spares_lookups_by_id(
    account: SimulatedAccount, client: httpx.Client, server: SimulatorServer
) -> None:
    session_id = account.start_session()
    server.faults.push(Fault.status(500, path="/sessions", exact=True))
    assert client.get(f"/sessions/{session_id}").status_code == 200
    assert client.get("/sessions").status_code == 500


def test_latency_delays_then_answers_normally(
    client: httpx.Client, server: SimulatorServer
) -> None:
    server.faults.push(Fault.latency(0.05))
    started = time.monotonic()
    response = client.get("/sessions")
    assert time.monotonic() - started >= 0.05
    assert response.status_code == 200


def test_latency_longer_than_the_client_timeout_times_out(server: SimulatorServer) -> None:
    server.faults.push(Fault.latency(5))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.url}/sessions", timeout=0.1)


def test_malformed_json_is_a_200_that_does_not_parse(
    client: httpx.Client, server: SimulatorServer
) -> None:
    server.faults.push(Fault.malformed_json())
    response = client.get("/sessions")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError, match=r"(?i)unterminated|expecting"):
        response.json()


def test_truncated_body_breaks_the_read(client: httpx.Client, server: SimulatorServer) -> None:
    server.faults.push(Fault.truncated())
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/sessions")
    assert client.get("/sessions").status_code == 200  # a fresh connection works


def test_reset_closes_without_a_response(client: httpx.Client, server: SimulatorServer) -> None:
    server.faults.push(Fault.reset())
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.get("/sessions")
    assert client.get("/sessions").status_code == 200


def test_payload_sends_any_json(client: httpx.Client, server: SimulatorServer) -> None:
    page = {"items": [{"session_id": 42}], "page": 1, "page_size": 100, "has_next": True}
    server.faults.push(Fault.payload(page, times=3))
    bodies = [client.get("/sessions", params={"page": n}).json() for n in (1, 2, 3)]
    assert bodies == [page, page, page]


def test_hang_holds_the_request_until_released(
    client: httpx.Client, server: SimulatorServer
) -> None:
    release = threading.Event()
    server.faults.push(Fault.hang(release))
    results: list[int] = []
    caller = threading.Thread(target=lambda: results.append(client.get("/sessions").status_code))
    caller.start()
    caller.join(timeout=0.1)
    assert caller.is_alive()
    assert results == []
    release.set()
    caller.join(timeout=10)
    assert results == [200]


def test_stop_returns_promptly_with_a_hung_request(account: SimulatedAccount) -> None:
    server = SimulatorServer(account, api_key=API_KEY).start()
    server.faults.push(Fault.hang())
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(
                f"{server.url}/sessions",
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=30,
            )
        except httpx.HTTPError as error:
            errors.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    # Wait until the server holds the request, not for luck.
    deadline = time.monotonic() + 10
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.requests
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    caller.join(timeout=10)
    assert not caller.is_alive()
    assert len(errors) == 1


def test_stop_closes_idle_keep_alive_connections(account: SimulatedAccount) -> None:
    server = SimulatorServer(account).start()
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/health").status_code == 200
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2


def test_times_must_be_positive() -> None:
    with pytest.raises(ValueError, match="times"):
        Fault.status(500, times=0)


@pytest.mark.parametrize("part", ["headers", "body"])
def test_trickle_sends_the_normal_answer_a_byte_at_a_time(
    client: httpx.Client, server: SimulatorServer, part: str
) -> None:
    normal = client.get("/sessions").content
    server.faults.push(Fault.trickle(0.001, part=part))
    started = time.monotonic()
    response = client.get("/sessions")
    # The server waits between bytes: the answer cannot come sooner than that.
    assert time.monotonic() - started >= 0.001 * (len(normal) - 1)
    assert response.status_code == 200
    assert response.content == normal


def test_stop_returns_promptly_with_a_trickling_answer(account: SimulatedAccount) -> None:
    server = SimulatorServer(account, api_key=API_KEY).start()
    server.faults.push(Fault.trickle(5.0, part="headers"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(b"GET /sessions HTTP/1.1\r\nHost: x\r\n\r\n")
        assert connection.recv(1) == b"H"  # the first byte; the next waits 5 s
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2


def test_redirect_answers_its_location(client: httpx.Client, server: SimulatorServer) -> None:
    server.faults.push(Fault.redirect("/elsewhere?page=2", status=307))
    response = client.get("/sessions")
    assert response.status_code == 307
    assert response.headers["location"] == "/elsewhere?page=2"
    assert response.content == b""
