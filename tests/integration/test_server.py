"""The HTTP server as a client meets it: methods, protocol versions, several addresses."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from notte_exporter.web.messages import Request, Response
from notte_exporter.web.server import WebServer, bind


def test_head_metrics_answers_200_with_headers_only(served) -> None:
    response = httpx.head(f"{served.urls[0]}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0
    assert response.headers["content-type"].startswith("text/plain")


def test_a_name_filter_returns_the_exporters_own_families(served) -> None:
    response = httpx.get(f"{served.urls[0]}/metrics", params={"name[]": "notte_up"}, timeout=10)
    assert response.status_code == 200
    assert "notte_up 1.0" in response.text
    assert "notte_sessions_active" not in response.text


def test_connections_are_kept_alive_over_http_1_1(served) -> None:
    with httpx.Client(base_url=served.urls[0], timeout=10) as client:
        first = client.get("/healthz")
        second = client.get("/metrics")
    assert first.http_version == second.http_version == "HTTP/1.1"
    assert "close" not in first.headers.get("connection", "")


def test_http_0_9_requests_are_refused(served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"GET /metrics\r\n\r\n")
        answer = sock.recv(4096)
    assert b"notte_up" not in answer
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4")


def test_a_request_body_over_64_kib_is_refused_and_a_small_one_ignored(served) -> None:
    with httpx.Client(base_url=served.urls[0], timeout=10) as client:
        assert client.request("GET", "/healthz", content=b"x" * 1024).status_code == 200
        assert client.request("GET", "/healthz", content=b"x" * (65 * 1024)).status_code == 400


def test_every_listen_address_is_served(make_exporter) -> None:
    exporter = make_exporter(web_listen_address=["127.0.0.1:0", "127.0.0.2:0"])
    exporter.start()
    assert [url.split("//")[1].split(":")[0] for url in exporter.urls] == [
        "127.0.0.1",
        "127.0.0.2",
    ]
    for url in exporter.urls:
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


def test_the_server_does_not_advertise_itself(served) -> None:
    assert "server" not in httpx.get(f"{served.urls[0]}/healthz", timeout=10).headers


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", ""])
def test_listening_sockets_say_they_are_tcp_so_asyncio_turns_nagle_off(host: str) -> None:
    """asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; without it every
    response written in two parts (head, then body) waits ~40 ms for a delayed ACK."""
    sock = bind(host, 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    import resource

    from notte_exporter.web.server import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        raised = raise_open_files_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == raised
        assert hard in (raised, resource.RLIM_INFINITY)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class _Ok:
    """Answers every request with 200 "ok", on the loop."""

    def answer_now(self, request: Request) -> Response:
        return Response(200, (("Content-Length", "3"),), b"ok\n")

    def answer(self, request: Request) -> Response:
        return self.answer_now(request)


# The idle and body timeouts of the ``quick`` server: short, since its tests wait them out,
# yet long enough for a client to send a request head, on a loaded machine too.
QUICK_TIMEOUT = 0.25


@pytest.fixture
def quick() -> Iterator[WebServer]:
    """A server whose idle and read timeouts are ``QUICK_TIMEOUT``."""
    server = WebServer(_Ok(), [("127.0.0.1", 0)], idle_timeout=QUICK_TIMEOUT)
    server.start()
    yield server
    server.stop()


def test_responses_carry_a_date_as_rfc_9110_requires_of_an_origin_with_a_clock(served) -> None:
    response = httpx.get(f"{served.urls[0]}/healthz", timeout=10)
    assert parsedate_to_datetime(response.headers["date"]).tzinfo is not None


def test_a_request_whose_body_stalls_is_closed(quick) -> None:
    """The body's own timeout (not the idle one, stopped once a request head is in) bounds it."""
    with socket.create_connection(("127.0.0.1", quick.port), timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        # 30 s bounds the wait, not the timeout; whatever it answers, it then closes.
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(4096):
                pass


def test_a_body_that_never_starts_is_answered_408_and_closed(quick) -> None:
    with socket.create_connection(("127.0.0.1", quick.port), timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        answer = b""
        with contextlib.suppress(ConnectionResetError):  # 30 s bounds the wait
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_body_trickled_past_the_timeout_is_answered_408_and_closed(quick) -> None:
    """Bytes that keep arriving do not keep the request alive: its body has a deadline."""
    with socket.create_connection(("127.0.0.1", quick.port), timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        # A byte every fifth of the timeout: bytes keep arriving all the while.
        sock.settimeout(QUICK_TIMEOUT / 5)
        answer = b""
        for _ in range(600):  # 30 s bounds the wait, not the timeout
            try:
                answer = sock.recv(4096)
                break
            except TimeoutError:
                sock.sendall(b"x")
        assert answer.startswith(b"HTTP/1.1 408 ")
        sock.settimeout(30)
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(4096):
                pass


def test_data_sent_after_the_server_answered_an_http_2_stream_costs_one_debug_line(
    quick,
) -> None:
    """hypercorn fails on DATA for a stream it has closed: that ends one connection, quietly."""
    said = _Records()
    logging.getLogger("asyncio").addHandler(said)
    logging.getLogger("notte_exporter.web.server").addHandler(said)
    logging.getLogger("notte_exporter.web.server").setLevel(logging.DEBUG)
    try:
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        connection.initiate_connection()
        with socket.create_connection(("127.0.0.1", quick.port), timeout=30) as sock:
            # HTTP/2 with prior knowledge; the body never arrives, so the stream gets a 408.
            head = [(":method", "POST"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
            connection.send_headers(1, [*head, ("content-length", "100")])
            sock.sendall(connection.data_to_send())
            status = None
            while status is None:
                data = sock.recv(65536)
                assert data, "the server closed the connection without answering"
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        status = dict(event.headers)[b":status"]
            assert status == b"408"
            connection.send_data(1, b"late")
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                sock.sendall(connection.data_to_send())
                while sock.recv(65536):
                    pass
        assert said.arrived.wait(timeout=30)
    finally:
        logging.getLogger("asyncio").removeHandler(said)
        logging.getLogger("notte_exporter.web.server").removeHandler(said)
        logging.getLogger("notte_exporter.web.server").setLevel(logging.NOTSET)
    [record] = said.records
    assert (record.levelno, record.getMessage()) == (
        logging.DEBUG,
        "closed a connection the HTTP library failed on (KeyError)",
    )
    assert httpx.get(f"{quick.url}/metrics", timeout=10).status_code == 200


class _Records(logging.Handler):
    """Keeps the records it is given; ``arrived`` is set by the first."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.arrived = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.arrived.set()
