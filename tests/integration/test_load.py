"""The server under load, on loopback: concurrent scrapes queue, idle connections are cheap.

Waits are bounded generously and nothing here asserts a duration: the machine is shared,
and what matters is that every scrape is answered and that slow clients cost sockets, not
threads.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

CONCURRENT_SCRAPES = 200
IDLE_CONNECTIONS = 1000


@pytest.fixture(autouse=True)
def _enough_descriptors() -> Iterator[None]:
    # Both ends of every connection live in this process: two descriptors each, plus room.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * IDLE_CONNECTIONS + 512
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:  # root (as in CI) may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
        except (ValueError, OSError):
            pytest.fail(f"the hard limit of open files ({hard}) is below {wanted}")
    else:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow  # a second of CPU or more: the full tier (tests/tiers.py)
def test_200_concurrent_scrapes_all_succeed(served) -> None:
    url = f"{served.urls[0]}/metrics"
    start = threading.Barrier(CONCURRENT_SCRAPES)

    def scrape(_: int) -> int:
        start.wait(timeout=60)
        # A new connection each, as 200 Prometheus servers would open.
        return httpx.get(url, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=CONCURRENT_SCRAPES) as pool:
        statuses = list(pool.map(scrape, range(CONCURRENT_SCRAPES)))
    assert statuses == [200] * CONCURRENT_SCRAPES


def test_requests_beyond_max_requests_wait_instead_of_taking_threads(make_exporter) -> None:
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_max_requests=2)
    exporter.start()
    # The status page is rendered on the worker threads, which --web.max-requests bounds.
    url = f"{exporter.urls[0]}/"
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda _: httpx.get(url, timeout=60).status_code, range(50)))
    assert statuses == [200] * 50
    workers = [t for t in threading.enumerate() if t.name.startswith("http_")]
    assert 1 <= len(workers) <= 2


def test_scrapes_of_published_metrics_take_no_worker_thread(make_exporter) -> None:
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_max_requests=2)
    exporter.start()
    base = exporter.urls[0]
    httpx.get(base + "/metrics", timeout=60)  # asks for the text format: published from now
    assert exporter.poll_once().ok
    # Workers of servers stopped by earlier tests may not have ended yet: look for new ones.
    before = {t for t in threading.enumerate() if t.name.startswith("http_")}
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(
            pool.map(
                lambda path: httpx.get(base + path, timeout=60).status_code,
                ["/metrics", "/healthz", "/readyz"] * 20,
            )
        )
    assert statuses == [200] * 60
    assert not {t for t in threading.enumerate() if t.name.startswith("http_")} - before


def open_idle_connections(port: int, count: int) -> list[socket.socket]:
    """Half the connections send nothing, half a request head that never ends (slowloris)."""
    sockets = []
    for index in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        if index % 2:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sockets.append(sock)
    return sockets


@pytest.mark.slow  # a second of CPU or more: the full tier (tests/tiers.py)
def test_a_scrape_succeeds_past_1000_idle_and_slow_connections(served) -> None:
    threads_before = threading.active_count()
    idle = open_idle_connections(served.port, IDLE_CONNECTIONS)
    try:
        response = httpx.get(f"{served.urls[0]}/metrics", timeout=30)
        assert response.status_code == 200
        assert "notte_up 1.0" in response.text
        # Connections cost sockets, not threads.
        assert threading.active_count() < threads_before + 100
    finally:
        for sock in idle:
            sock.close()


def test_the_server_closes_connections_that_send_no_complete_request(make_exporter) -> None:
    exporter = make_exporter(web_listen_address="127.0.0.1:0", idle_timeout=0.25)
    exporter.start()
    idle = open_idle_connections(exporter.port, 20)
    try:
        for sock in idle:
            # The server's idle timeout is shortened; 30 s bounds the wait, not the timeout.
            # Whatever it answers (an error status, or nothing), it then closes.
            with contextlib.suppress(ConnectionResetError):
                while sock.recv(4096):
                    pass
    finally:
        for sock in idle:
            sock.close()
