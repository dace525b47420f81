"""The routes answer alike on the server's loop and on a worker thread, and know which is which."""

import pytest
from prometheus_client import CollectorRegistry, Gauge

from notte_exporter.metrics.exposition import PublishedExposition
from notte_exporter.polling.state import ExporterState
from notte_exporter.web.messages import Request
from notte_exporter.web.routes import Routes

OPENMETRICS = "application/openmetrics-text"
PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)


@pytest.fixture
def routes() -> Routes:
    registry = CollectorRegistry(auto_describe=True)
    Gauge("notte_things", "Things.", registry=registry).set(1)
    # No per-process series: they would move between the two answers compared.
    exposition = PublishedExposition(registry)
    # As a scraper of each format would have: asked for, and so published.
    exposition.reply()
    exposition.reply(OPENMETRICS)
    exposition.publish()
    return Routes(exposition, ExporterState(), "/metrics", status_page=lambda: "<p>")


@pytest.mark.parametrize(
    "request_",
    [
        Request("GET", "/metrics"),
        Request("HEAD", "/metrics"),
        Request("GET", "/metrics", headers={"accept-encoding": "gzip"}),
        Request("GET", "/metrics", headers={"accept": OPENMETRICS}),
        Request("GET", "/metrics", "unrelated=1"),
        Request("GET", "/healthz"),
        Request("GET", "/readyz"),
        Request("GET", "/nowhere"),
        Request("POST", "/metrics"),
        Request("DELETE", "/"),
    ],
    ids=lambda request: f"{request.method} {request.path}?{request.query} {request.headers}",
)
def test_what_the_loop_answers_is_what_a_thread_would(routes, request_) -> None:
    now = routes.answer_now(request_)
    assert now is not None
    assert now == routes.answer(request_)


@pytest.mark.parametrize(
    "request_",
    [
        Request("GET", "/"),
        Request("GET", "/metrics", "name[]=notte_things"),
        Request("GET", "/metrics", "name%5B%5D=notte_things"),
    ],
    ids=["status page", "name filter", "escaped name filter"],
)
def test_the_status_page_and_live_renders_are_left_to_a_thread(routes, request_) -> None:
    assert routes.answer_now(request_) is None
    assert routes.answer(request_).status == 200


def test_a_format_variant_goes_to_a_thread_until_it_is_published(routes) -> None:
    request = Request("GET", "/metrics", headers={"accept": PROMETHEUS_3})
    assert routes.answer_now(request) is None
    assert b"notte_things 1.0" in routes.answer(request).body


def test_metrics_say_their_type_length_and_encoding(routes) -> None:
    response = routes.answer(Request("GET", "/metrics", headers={"accept-encoding": "gzip"}))
    headers = dict(response.headers)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert headers["Content-Length"] == str(len(response.body))
    assert headers["Content-Encoding"] == "gzip"


def test_a_header_sent_twice_is_read_as_one_joined_with_a_comma() -> None:
    request = Request.of(
        "GET", "/metrics", "", [(b"Accept-Encoding", b"br"), (b"accept-encoding", b"gzip")]
    )
    assert request.headers == {"accept-encoding": "br,gzip"}
