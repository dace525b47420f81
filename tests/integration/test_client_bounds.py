"""A hostile or broken upstream cannot stop, starve or fool the client.

Each bound of the HTTP client, met over loopback: answers that trickle in a byte at a time,
answers too large (plain or a gzip bomb), pages longer than asked for, JSON nested too deep,
and redirects to another origin or in a loop. Each fails as its reason says, on time and
within its memory, and the exporter works again with the next good answer.
"""

import gzip
import json
import logging
import os
import ssl
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from notte_exporter.api.client import NotteClient
from notte_exporter.errors import ApiError, FailureReason
from notte_exporter.instrumentation import ExporterMetrics
from notte_exporter.simulator import Fault, SimulatorServer
from support import API_KEY, sample
from tls_support import make_pki

MIB = 1 << 20
PAGE = {"page": 1, "page_size": 100, "has_previous": False}
LISTING = "/sessions?page=1&page_size=100&only_active=true&only_current_token=false"
HISTORY = "/sessions?page=1&page_size=100&only_active=false&only_current_token=false"
# What a poll may take past its budget: the poll's own work around the request that timed out.
MARGIN_SECONDS = 0.5
# The poll budget of the trickle tests, which wait it out: short, yet enough for a good poll
# on a loaded machine. Their trickles send a byte every fifth of it.
TRICKLE_BUDGET = 0.4
# A poll of the exporter that reads one answer at the cap stays far below this.
PEAK_RSS_BYTES = 200 * MIB
TOO_LARGE = "GET /sessions answered 200 with more than 8.0MiB (--notte.max-response-bytes)"
SMALL_ITEM = b'{"session_id":"x","status":"active","created_at":"2026-05-01T10:00:00Z"}'
# Valid JSON half a million deep, in under 1 MiB (bodies that large have their values counted).
DEEP = b"[" * 500_000 + b"]" * 500_000


def gzip_body(head: bytes, repeated: bytes, times: int, tail: bytes = b"") -> bytes:
    """The gzip of ``head + repeated * times + tail``, made without building it whole.

    Each part is deflated once on its own; a full flush leaves it byte-aligned and free of
    references to what came before, so its bytes can simply be repeated.
    """

    def deflate(data: bytes, mode: int) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return packer.compress(data) + packer.flush(mode)

    crc = zlib.crc32(head)
    for _ in range(times):
        crc = zlib.crc32(repeated, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + len(repeated) * times + len(tail)
    return b"".join([
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff",
        deflate(head, zlib.Z_FULL_FLUSH),
        deflate(repeated, zlib.Z_FULL_FLUSH) * times,
        deflate(tail, zlib.Z_FINISH),
        struct.pack("<II", crc, size & 0xFFFFFFFF),
    ])  # fmt: skip


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """About 260 KB that inflate to 256 MiB of zeros."""
    return gzip_body(b"", bytes(MIB), 256)


@pytest.fixture(scope="module")
def million_item_page() -> bytes:
    """A gzip'd page of 1,000,000 sessions (about 70 MB inflated)."""
    tail = b'],"has_next":false,"page":1,"page_size":100,"has_previous":false}'
    return gzip_body(b'{"items":[' + SMALL_ITEM, (b"," + SMALL_ITEM) * 1000, 999, b"," + tail)


@pytest.fixture(scope="module")
def empty_item_page() -> bytes:
    """A gzip'd page of 2,700,000 items "{}", just under 8 MiB: many values in few bytes."""
    return gzip_body(b'{"items":[{}', b",{}" * 1000, 2_700, b'],"has_next":false}')


def gzipped(body: bytes) -> Fault:
    return Fault.status(
        200, body, {"Content-Encoding": "gzip"}, content_type="application/json",
        path="/sessions", exact=True,
    )  # fmt: skip


def failed(status: Any, reason: FailureReason) -> bool:
    return not status.ok and status.reason is reason


# -- time ----------------------------------------------------------------------------------


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_trickling_answer_fails_the_poll_as_timeout_within_its_budget(
    api, make_exporter, part: str
) -> None:
    exporter = make_exporter(poll_timeout=TRICKLE_BUDGET, sessions_lookup_budget=0)
    assert exporter.poll_once().ok
    # Each read is answered well within --notte.timeout (5 s).
    trickle = Fault.trickle(TRICKLE_BUDGET / 5, part=part, path="/sessions", exact=True, times=3)
    api.faults.push(trickle)
    status = exporter.poll_once()
    assert failed(status, FailureReason.TIMEOUT), status
    assert status.duration_seconds < TRICKLE_BUDGET + MARGIN_SECONDS
    assert sample(exporter, "notte_up") == 0
    assert sample(exporter, "notte_exporter_poll_failures_total", reason="timeout") == 1


def test_a_trickle_is_cut_at_the_request_timeout_when_the_poll_has_time_left(
    api, make_exporter
) -> None:
    exporter = make_exporter(
        notte_timeout=0.2, notte_retries=0, poll_timeout=20.0, sessions_lookup_budget=0
    )
    api.faults.push(Fault.trickle(0.04, part="headers", path="/sessions", exact=True))
    status = exporter.poll_once()
    assert failed(status, FailureReason.TIMEOUT), status
    assert status.message == "GET /sessions did not finish within 0.2s"
    assert status.duration_seconds < 0.2 + MARGIN_SECONDS


@pytest.fixture
def https_api(account, tmp_path: Path, monkeypatch) -> Iterator[SimulatorServer]:
    """The simulated API over HTTPS, as the real one is, trusted through SSL_CERT_FILE."""
    pki = make_pki(tmp_path / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))  # read when a client is made
    with SimulatorServer(account, api_key=API_KEY, ssl_context=context) as server:
        yield server


def test_the_api_is_read_over_https(https_api, account, make_exporter) -> None:
    account.start_session(browser_type="firefox")
    exporter = make_exporter(notte_api_url=https_api.url, sessions_lookup_budget=0)
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_sessions_active", browser_type="firefox") == 1


def test_a_trickle_over_https_fails_as_timeout_within_the_budget(https_api, make_exporter) -> None:
    trickle = Fault.trickle(TRICKLE_BUDGET / 5, part="headers", path="/sessions", exact=True)
    https_api.faults.push(trickle)
    exporter = make_exporter(
        notte_api_url=https_api.url, poll_timeout=TRICKLE_BUDGET, sessions_lookup_budget=0
    )
    status = exporter.poll_once()
    assert failed(status, FailureReason.TIMEOUT), status
    assert status.duration_seconds < TRICKLE_BUDGET + MARGIN_SECONDS


# -- size ----------------------------------------------------------------------------------


@pytest.fixture
def client(api: SimulatorServer) -> Iterator[NotteClient]:
    """The client alone, with a cap of 2 MiB and no retries."""
    with closing(client_of(api, API_KEY)) as made:
        yield made


def client_of(api: SimulatorServer, key: str) -> NotteClient:
    metrics = ExporterMetrics(CollectorRegistry())
    return NotteClient(api.url, lambda: key, metrics, max_response_bytes=2 * MIB, retries=0)


ENDPOINT_CALLS: list[Any] = [
    pytest.param(
        "/sessions",
        lambda c, d: c.fetch_sessions(
            page=1, page_size=100, only_active=True, only_current_token=False, deadline=d
        ),
        id="listing",
    ),
    pytest.param("/sessions/s-1", lambda c, d: c.get_session("s-1", deadline=d), id="lookup"),
    pytest.param("/usage", lambda c, d: c.get_usage(deadline=d), id="usage"),
]


@pytest.mark.parametrize(("path", "call"), ENDPOINT_CALLS)
@pytest.mark.parametrize("status", [200, 500])
def test_every_answer_over_the_cap_is_invalid_naming_the_limit(
    api, client, path: str, call: Callable[..., Any], status: int
) -> None:
    body = b'{"message": "' + b"x" * 2 * MIB + b'"}'
    api.faults.push(Fault.status(status, body, content_type="application/json", path=path))
    with pytest.raises(ApiError) as caught:
        call(client, client.deadline_after(10))
    assert caught.value.reason is FailureReason.INVALID_RESPONSE
    endpoint = "/sessions/{session_id}" if path.startswith("/sessions/") else path
    assert caught.value.message == (
        f"GET {endpoint} answered {status} with more than 2.0MiB (--notte.max-response-bytes)"
    )


def test_a_gzip_bomb_is_given_up_at_the_cap_and_the_next_answer_restores_notte_up(
    api, make_exporter, gzip_bomb: bytes
) -> None:
    exporter = make_exporter(sessions_lookup_budget=0)
    assert exporter.poll_once().ok
    api.faults.push(gzipped(gzip_bomb))
    status = exporter.poll_once()
    assert failed(status, FailureReason.INVALID_RESPONSE), status
    assert status.message == TOO_LARGE
    assert sample(exporter, "notte_up") == 0
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_up") == 1


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_listing_is_read_as_sent(api, account, make_exporter, encoding: str) -> None:
    account.start_session(browser_type="firefox")
    listing = json.dumps(account.page(1, 100, only_active=True), default=str).encode()
    body = gzip.compress(listing) if encoding == "gzip" else zlib.compress(listing)
    api.faults.push(
        Fault.status(200, body, {"Content-Encoding": encoding}, content_type="application/json")
    )
    exporter = make_exporter(sessions_lookup_budget=0)
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_sessions_active", browser_type="firefox") == 1
    assert api.requests[0].headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("encoding", "body", "words"),
    [
        ("br", b"\x8b\x00\x80", "a Content-Encoding it did not ask for (only gzip or deflate)"),
        ("gzip", b"not gzip at all", "a gzip body that does not decompress"),
    ],
    ids=["not-asked-for", "corrupt"],
)
def test_a_body_that_cannot_be_decompressed_is_invalid(
    api, make_exporter, encoding: str, body: bytes, words: str
) -> None:
    api.faults.push(
        Fault.status(200, body, {"Content-Encoding": encoding}, content_type="application/json")
    )
    status = make_exporter(sessions_lookup_budget=0).poll_once()
    assert failed(status, FailureReason.INVALID_RESPONSE), status
    assert status.message == f"GET /sessions answered 200 with {words}"


# Runs the exporter's command line and, as it exits, writes the process's own peak RSS
# (VmHWM: the memory of this program only, where getrusage's ru_maxrss would also count the
# forking test worker's size, which the child inherits until it execs).
_MEASURED = """
import atexit, sys
from notte_exporter.cli import main

def peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(sys.argv[1], "w") as out:
        out.write(kib)

atexit.register(peak)
raise SystemExit(main(sys.argv[2:]))
"""


def run_once_measured(api: SimulatorServer, tmp_path: Path) -> tuple[int, str, int]:
    """``--once`` against ``api`` in a process of its own: exit code, stderr, peak RSS."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("NOTTE_")}
    env |= {"NOTTE_API_URL": api.url, "NOTTE_API_KEY": API_KEY}
    out, err, peak = tmp_path / "stdout", tmp_path / "stderr", tmp_path / "peak"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.run(
            [sys.executable, "-c", _MEASURED, str(peak), "--once", "--no-collector.usage"],
            stdout=stdout, stderr=stderr, env=env, timeout=60, check=False,
        )  # fmt: skip
    return process.returncode, err.read_text(), int(peak.read_text()) * 1024


TOO_MANY_VALUES = (
    "GET /sessions answered 200 with more JSON values than any answer of the Notte API holds "
    "(over 100,000)"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("bomb", "message"),
    [
        ("gzip_bomb", TOO_LARGE),
        ("million_item_page", TOO_LARGE),
        ("empty_item_page", TOO_MANY_VALUES),
    ],
)
def test_a_bomb_costs_the_process_little_memory_and_exits_with_one_line(
    api, tmp_path: Path, request, bomb: str, message: str
) -> None:
    api.faults.push(gzipped(request.getfixturevalue(bomb)))
    code, stderr, peak = run_once_measured(api, tmp_path)
    assert code == 1, stderr
    assert "Traceback" not in stderr
    # The exit message is the last line: one line, reason first.
    *_, last = stderr.splitlines()
    assert last.startswith(f"notte-exporter: poll failed: invalid_response: {message};")
    assert peak < PEAK_RSS_BYTES, f"peak RSS {peak / MIB:.0f} MiB"


# -- page size -----------------------------------------------------------------------------


def test_a_page_with_more_items_than_asked_for_is_invalid(api, account, make_exporter) -> None:
    items = [account.session(account.start_session()) for _ in range(4)]
    api.faults.push(Fault.payload({"items": items, "has_next": False, **PAGE}))
    status = make_exporter(notte_page_size=3, sessions_lookup_budget=0).poll_once()
    assert failed(status, FailureReason.INVALID_RESPONSE), status
    assert status.message == "GET /sessions page 1 holds 4 items, more than the 3 asked for"


def test_a_page_longer_than_any_page_is_refused_before_its_items_are_read(
    api, make_exporter
) -> None:
    # Items that are not even sessions: none of them may be read one by one.
    body = b'{"items": [' + b",".join([b"{}"] * 50_000) + b'], "has_next": false}'
    api.faults.push(Fault.status(200, body, content_type="application/json"))
    exporter = make_exporter(sessions_lookup_budget=0)
    status = exporter.poll_once()
    assert failed(status, FailureReason.INVALID_RESPONSE), status
    assert status.message == "GET /sessions page 1 holds 50000 items, more than the 100 asked for"
    assert sample(exporter, "notte_exporter_invalid_sessions_total") == 0


# -- JSON depth ----------------------------------------------------------------------------


def test_a_listing_nested_half_a_million_deep_is_invalid_not_an_error_of_ours(
    api, make_exporter
) -> None:
    api.faults.push(Fault.status(200, DEEP, content_type="application/json"))
    status = make_exporter(sessions_lookup_budget=0).poll_once()
    assert failed(status, FailureReason.INVALID_RESPONSE), status
    assert "recursion limit exceeded" in status.message


@pytest.mark.parametrize(("path", "call"), ENDPOINT_CALLS[1:])
def test_any_answer_nested_half_a_million_deep_is_invalid(
    api, client, path: str, call: Callable[..., Any]
) -> None:
    api.faults.push(Fault.status(200, DEEP, content_type="application/json", path=path))
    with pytest.raises(ApiError) as caught:
        call(client, client.deadline_after(10))
    assert caught.value.reason is FailureReason.INVALID_RESPONSE


def test_an_error_body_nested_half_a_million_deep_keeps_its_status_reason(api, client) -> None:
    api.faults.push(Fault.status(503, DEEP, content_type="application/json"))
    with pytest.raises(ApiError) as caught:
        client.get_usage(deadline=client.deadline_after(10))
    assert caught.value.reason is FailureReason.SERVER_ERROR
    assert caught.value.message.startswith("GET /usage answered 503: [[[[")


# -- redirects -----------------------------------------------------------------------------


def test_a_redirect_to_another_origin_is_refused_and_the_key_never_sent_there(
    api, account, make_exporter
) -> None:
    # Another server that would answer anyone: what it says must not be taken as the account's.
    with SimulatorServer(account) as elsewhere:
        api.faults.push(Fault.redirect(elsewhere.url + LISTING))
        status = make_exporter(sessions_lookup_budget=0).poll_once()
        assert elsewhere.requests == []
        origin = elsewhere.url
    assert failed(status, FailureReason.INVALID_RESPONSE), status
    assert status.message == (
        f"GET /sessions answered 302, a redirect to another origin ({origin}), "
        "which is not followed"
    )
    assert status.http_status == 302


@pytest.mark.parametrize(
    ("target", "origin"),
    [
        ("https://127.0.0.1:{port}", "https://127.0.0.1:{port}"),
        ("http://localhost:{port}", "http://localhost:{port}"),
        ("http://127.0.0.1:{other}", "http://127.0.0.1:{other}"),
        ("http://user:hunter2@127.0.0.1:{other}", "http://127.0.0.1:{other}"),
    ],
    ids=["scheme", "host", "port", "userinfo"],
)
def test_another_scheme_host_or_port_is_another_origin_named_without_secrets(
    api, make_exporter, target: str, origin: str
) -> None:
    ports = {"port": api.port, "other": api.port + 1}
    api.faults.push(Fault.redirect(target.format(**ports) + LISTING + "&token=hunter2"))
    status = make_exporter(sessions_lookup_budget=0).poll_once()
    assert failed(status, FailureReason.INVALID_RESPONSE), status
    assert f"a redirect to another origin ({origin.format(**ports)})" in status.message
    assert "hunter2" not in status.message
    assert [request.path for request in api.requests] == ["/sessions"]


def test_an_origin_that_spells_the_key_is_named_without_it(api) -> None:
    key = "Sk-Mixed-Case-Key"
    # Host names are lower-cased: the key must go in any case.
    api.faults.push(Fault.redirect(f"http://{key}.example/sessions"))
    with closing(client_of(api, key)) as client, pytest.raises(ApiError) as caught:
        client.get_usage(deadline=client.deadline_after(10))
    assert "(http://<redacted>.example)" in caught.value.message
    assert key.lower() not in caught.value.message.lower()


def test_same_origin_redirects_are_followed_three_times_with_the_key(api, make_exporter) -> None:
    api.faults.push(Fault.redirect(LISTING, path="/sessions", exact=True, times=3))
    assert make_exporter(sessions_lookup_budget=0).poll_once().ok
    assert len(api.requests) == 4
    assert {request.headers["authorization"] for request in api.requests} == {f"Bearer {API_KEY}"}


def test_a_fourth_redirect_is_not_followed(api, make_exporter) -> None:
    api.faults.push(Fault.redirect(LISTING, path="/sessions", exact=True, times=4))
    status = make_exporter(sessions_lookup_budget=0).poll_once()
    assert failed(status, FailureReason.INVALID_RESPONSE), status
    assert status.message == "GET /sessions was redirected more than 3 times"
    assert len(api.requests) == 4


def test_a_redirect_loop_on_the_history_fails_the_history_not_the_poll(
    api, account, make_exporter, caplog
) -> None:
    account.start_session()
    # The live listing's page 1 always comes first (the no-op takes it); the history's page
    # 1 is asked for only once that has answered, and meets an endless loop.
    api.faults.push(
        Fault.latency(0.0, path="/sessions", exact=True),
        Fault.redirect(HISTORY, path="/sessions", exact=True, times=30),
    )
    exporter = make_exporter()
    with caplog.at_level(logging.INFO, logger="notte_exporter"):
        status = exporter.poll_once()
    assert status.ok, status
    assert sample(exporter, "notte_up") == 1
    assert (
        "could not scan the session history: invalid_response: GET /sessions was redirected "
        "more than 3 times" in caplog.text
    )
