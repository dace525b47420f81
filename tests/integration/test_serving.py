"""The running daemon over real HTTP: endpoints, negotiation, independence from the API."""

import gzip
import threading

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from notte_exporter.simulator import Fault
from support import API_KEY


@pytest.fixture
def running(account, make_exporter):
    account.start_session(browser_type="chrome")
    exporter = make_exporter(web_listen_address="127.0.0.1:0")
    url = exporter.start()
    assert exporter.state.wait_for_polls(1, timeout=10)
    base = url.removesuffix("/metrics")
    with httpx.Client(base_url=base, timeout=5) as client:
        yield exporter, client


def test_metrics_are_served_in_the_prometheus_text_format(running) -> None:
    _, client = running
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'notte_sessions_active{browser_type="chrome"} 1.0' in response.text


def test_openmetrics_is_served_when_the_scraper_asks_for_it(running) -> None:
    _, client = running
    response = client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_metrics_are_gzipped_when_the_scraper_accepts_it(running) -> None:
    exporter, _ = running
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    raw = httpx.get(url, headers={"Accept-Encoding": "gzip"}).headers
    assert raw["content-encoding"] == "gzip"
    with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        body = b"".join(response.iter_raw())
    assert b"notte_up 1.0" in gzip.decompress(body)


def test_healthz_answers_while_the_process_lives(running) -> None:
    _, client = running
    assert client.get("/healthz").status_code == 200


def test_readyz_answers_after_the_first_successful_poll(running) -> None:
    _, client = running
    assert client.get("/readyz").status_code == 200


def test_status_page_links_the_endpoints_and_shows_the_last_poll(running) -> None:
    _, client = running
    page = client.get("/").text
    for link in ('href="/metrics"', 'href="/healthz"', 'href="/readyz"'):
        assert link in page
    assert "the last poll succeeded" in page
    assert "<strong>1</strong> live at the last successful poll" in page


def test_unknown_paths_are_404_and_writes_are_refused(running) -> None:
    _, client = running
    assert client.get("/nope").status_code == 404
    assert client.post("/metrics").status_code == 405


def test_scrapes_never_call_the_api(api, running) -> None:
    _, client = running
    before = len(api.requests)
    for _ in range(20):
        client.get("/metrics")
    assert len(api.requests) == before


def test_a_hung_api_slows_neither_scrapes_nor_readiness_of_a_ready_exporter(
    api, account, make_exporter
) -> None:
    release = threading.Event()
    api.faults.push(Fault.hang(release))
    exporter = make_exporter(web_listen_address="127.0.0.1:0", notte_timeout=30)
    url = exporter.start()
    try:
        # The first poll is stuck in the API; the server answers at once regardless.
        response = httpx.get(url, timeout=2)
        assert response.status_code == 200
        assert "notte_up 0.0" in response.text
        assert httpx.get(url.replace("/metrics", "/readyz"), timeout=2).status_code == 503
    finally:
        release.set()
    assert exporter.state.wait_for_polls(1, timeout=10)
    assert httpx.get(url.replace("/metrics", "/readyz"), timeout=2).status_code == 200


def test_a_custom_telemetry_path_serves_the_metrics(make_exporter) -> None:
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_telemetry_path="/probe")
    url = exporter.start()
    assert url.endswith("/probe")
    assert exporter.state.wait_for_polls(1, timeout=10)
    assert "notte_up 1.0" in httpx.get(url).text


def test_the_key_is_sent_to_the_api_only(api, running) -> None:
    _, client = running
    for path in ("/", "/metrics", "/healthz", "/readyz"):
        assert API_KEY not in client.get(path).text
    assert api.requests[0].headers["authorization"].endswith(API_KEY)


@pytest.mark.slow  # a second of CPU or more: the full tier (tests/tiers.py)
def test_no_scrape_ever_mixes_two_polls(account, clock, make_exporter) -> None:
    """Each poll sees one more session, one second later: every scrape must agree with itself."""
    began = clock.now().timestamp()
    exporter = make_exporter(web_listen_address="127.0.0.1:0", sessions_lookup_budget=0)
    url = exporter.start()
    assert exporter.state.wait_for_polls(1, timeout=10)
    done = threading.Event()

    def publish_polls() -> None:
        try:
            for _ in range(40):
                account.start_session()
                clock.advance(1)
                exporter.poll_once()
        finally:
            done.set()

    publisher = threading.Thread(target=publish_polls)
    publisher.start()
    seen: set[float] = set()
    with httpx.Client(timeout=5) as client:
        while not done.is_set():
            values = {
                sample.name: sample.value
                for family in text_string_to_metric_families(client.get(url).text)
                for sample in family.samples
                if not sample.labels or sample.labels.get("browser_type") == "chromium"
            }
            polls = values["notte_exporter_polls_total"]
            active = values.get("notte_sessions_active", 0.0)
            success = values["notte_exporter_last_poll_success_timestamp_seconds"]
            # Poll n (the background one is n = 1) saw n - 1 sessions at start + n - 1 s.
            assert active == polls - 1
            assert success == began + polls - 1
            seen.add(polls)
    publisher.join()
    assert len(seen) > 1
