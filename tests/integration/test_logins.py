"""Basic-auth logins over HTTP: what a flood of logins to check does to everyone else.

bcrypt checks are held by a gate (``BcryptGate``) rather than timed, so the tests know
exactly which logins wait for one; only the timing test measures, and it compares two
kinds of login against each other, never against a fixed duration.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

import bcrypt
import httpx
import pytest

from notte_exporter.web.auth import LOGIN_QUEUE
from tls_support import PASSWORD, USER, BcryptGate, bcrypt_hash, write_config

WORKER_THREADS = LOGIN_QUEUE + 4
WRONG_LOGINS = (("wrong user", ("mallory", PASSWORD)), ("wrong password", (USER, "x")))


@pytest.fixture
def gate() -> Iterator[BcryptGate]:
    held = BcryptGate()
    yield held
    held.open()


@pytest.fixture
def base(tmp_path, make_exporter) -> str:
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    exporter = make_exporter(
        web_listen_address="127.0.0.1:0", web_config_file=path, web_max_requests=WORKER_THREADS
    )
    return exporter.start().removesuffix("/metrics")


@pytest.fixture
def client(base) -> Iterator[httpx.Client]:
    """One connection per request in flight, for as many as the tests send at once."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    with httpx.Client(base_url=base, timeout=30, limits=limits) as shared:
        yield shared


def flood(
    pool: ThreadPoolExecutor, client: httpx.Client, count: int
) -> list[Future[httpx.Response]]:
    """``count`` wrong logins at once, half of them for users that do not exist."""
    logins = [(USER if i % 2 else f"user{i}", f"wrong{i}") for i in range(count)]
    return [pool.submit(client.get, "/metrics", auth=auth) for auth in logins]


def refused_first(futures: list[Future[httpx.Response]], count: int) -> list[int]:
    """The statuses of the first ``count`` answers (the others wait for the gate)."""
    answered = as_completed(futures, timeout=10)
    return [next(answered).result().status_code for _ in range(count)]


def test_a_login_beyond_the_queue_is_refused_at_once_with_retry_after(
    client, gate, monkeypatch
) -> None:
    monkeypatch.setattr(bcrypt, "checkpw", gate)
    with ThreadPoolExecutor(LOGIN_QUEUE + 1) as pool:
        waiting = flood(pool, client, LOGIN_QUEUE + 1)
        assert refused_first(waiting, 1) == [503]  # the queue is full from here on
        refused = client.get("/metrics", auth=(USER, PASSWORD), timeout=5)
        gate.open()
        statuses = Counter(future.result().status_code for future in waiting)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "try again" in refused.text
    assert statuses == {401: LOGIN_QUEUE, 503: 1}
    assert len(gate.passwords) == LOGIN_QUEUE  # refusals cost no bcrypt
    assert client.get("/metrics", auth=(USER, PASSWORD)).status_code == 200


def test_a_remembered_login_is_served_while_a_flood_of_logins_waits_for_bcrypt(
    client, gate, monkeypatch
) -> None:
    # The status page runs on a worker thread, which the flood must not take.
    assert client.get("/", auth=(USER, PASSWORD)).status_code == 200
    monkeypatch.setattr(bcrypt, "checkpw", gate)
    count = 3 * WORKER_THREADS
    with ThreadPoolExecutor(count) as pool:
        waiting = flood(pool, client, count)
        assert set(refused_first(waiting, count - LOGIN_QUEUE)) == {503}
        remembered = client.get("/", auth=(USER, PASSWORD), timeout=5)
        gate.open()
        statuses = Counter(future.result().status_code for future in waiting)
    assert remembered.status_code == 200
    assert statuses == {401: LOGIN_QUEUE, 503: count - LOGIN_QUEUE}


def test_a_wrong_user_takes_as_long_as_a_wrong_password(tmp_path, make_exporter) -> None:
    # A cost where bcrypt outweighs the HTTP round trip, yet keeps the test quick.
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {USER: bcrypt_hash(cost=7)}})
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    base = exporter.start().removesuffix("/metrics")
    took: dict[str, list[float]] = {"wrong user": [], "wrong password": []}
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(7):  # interleaved, so that a busy moment slows both alike
            for kind, auth in WRONG_LOGINS:
                start = time.perf_counter()
                assert client.get("/metrics", auth=auth).status_code == 401
                took[kind].append(time.perf_counter() - start)
    # The fastest of each: a busy machine only ever adds time. Before the decoy followed the
    # users' cost, a wrong user took its fixed cost's bcrypt: many times longer than this.
    ratio = min(took["wrong user"]) / min(took["wrong password"])
    assert 1 / 3 < ratio < 3, took
