"""NotteClient.stop_session over loopback: one DELETE, never retried, answers classified."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from notte_exporter.api.client import NotteClient
from notte_exporter.errors import ApiError
from notte_exporter.instrumentation import ENDPOINT_STOP, ExporterMetrics
from notte_exporter.simulator import Fault
from support import API_KEY


@pytest.fixture
def client(api, sleeps) -> Iterator[NotteClient]:
    made = NotteClient(
        api.url, lambda: API_KEY, ExporterMetrics(CollectorRegistry()), sleep=sleeps,
        max_response_bytes=8 * 1024 * 1024,
    )  # fmt: skip
    yield made
    made.close()


def deadline() -> float:
    return time.monotonic() + 10


def test_a_stop_is_one_delete_that_answers_the_closed_session(api, account, client) -> None:
    session_id = account.start_session()
    answer = client.stop_session(session_id, deadline=deadline())
    assert isinstance(answer, dict)  # a Session, not None or an InvalidItem
    assert (answer["status"], answer["close_reason"]) == ("closed", "manual")
    (request,) = api.requests
    assert (request.method, request.path) == ("DELETE", f"/sessions/{session_id}/stop")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize("code", [429, 500, 503])
def test_a_failed_stop_is_not_retried(api, account, client, sleeps, code: int) -> None:
    session_id = account.start_session()
    api.faults.push(Fault.status(code, path=f"/sessions/{session_id}/stop", exact=True))
    with pytest.raises(ApiError) as raised:
        client.stop_session(session_id, deadline=deadline())
    assert raised.value.status == code
    assert f"DELETE {ENDPOINT_STOP} answered {code}" in raised.value.message
    assert len(api.requests) == 1
    assert sleeps == []


def test_a_session_the_api_does_not_know_is_none(client) -> None:
    assert client.stop_session("nope", deadline=deadline()) is None


def test_a_stopped_session_answers_the_apis_words(account, client) -> None:
    session_id = account.start_session()
    account.stop(session_id)
    with pytest.raises(ApiError, match="already closed"):
        client.stop_session(session_id, deadline=deadline())


def test_an_id_is_one_path_segment_whatever_it_holds(api, client) -> None:
    client.stop_session("a/b?c", deadline=deadline())
    assert api.requests[0].path == "/sessions/a%2Fb%3Fc/stop"
