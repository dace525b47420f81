"""The official client library (``notte-sdk``) as the contract of the API's responses.

Two directions:

* what the simulator serves for ``/sessions``, ``/sessions/{id}``, ``/usage`` and the stop
  endpoint validates against the models the SDK reads those responses with, so that every
  other test's stand-in speaks the API the SDK speaks;
* sessions generated from the SDK's own models (every status, close reason and browser type
  it knows, optional fields missing or null, naive and aware timestamps, durations with
  fractions), serialised as the SDK serialises them, are all kept by the exporter's page
  parser; only items outside the API's documented limits are skipped, and each is counted.

Where the SDK and ../shared/notte-api.md disagree, a test below is named after the
disagreement and says which side the exporter follows.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, get_args, get_origin

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notte_exporter.api.models import (
    LONGEST_IDLE_TIMEOUT_MINUTES,
    LONGEST_LIFETIME,
    LONGEST_MAX_DURATION_MINUTES,
    is_live,
    lifetime,
    parse_live_page,
    parse_page,
)
from notte_exporter.simulator import ManualClock, SimulatedAccount, SimulatorServer
from support import API_KEY

# Only the SDK's models are used, which send nothing; its telemetry stays off all the same,
# read once when notte-core is imported.
os.environ["DISABLE_TELEMETRY"] = "true"


@dataclass(frozen=True)
class Sdk:
    """The SDK's models these tests use, and the values of its closed types."""

    session: Any  # notte_core.types.SessionResponse: what every session response is read with
    listing: Any  # the listing's envelope, only in the SDK's generated OpenAPI models
    usage: Any  # /usage, likewise
    statuses: tuple[str, ...]
    close_reasons: tuple[str, ...]
    browser_types: tuple[str, ...]
    optional_fields: tuple[str, ...]  # filled with a default when the API leaves them out


@functools.cache
def sdk() -> Sdk:
    """The SDK, imported when a test first needs it rather than when the module is collected:
    building its generated models is the largest import of the suite, and every pytest worker
    collects this module, whether or not it runs a test of it."""
    # notte-core declares a class-based pydantic config, deprecated in pydantic 2: a warning
    # at import (the suite turns warnings into errors), nothing wrong with what it validates.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from notte_core.types import SessionResponse
        from notte_sdk._generated.models import PaginatedResponseSessionResponse, UsageResponse
    fields = SessionResponse.model_fields
    return Sdk(
        session=SessionResponse,
        listing=PaginatedResponseSessionResponse,
        usage=UsageResponse,
        statuses=_literals(fields["status"].annotation),
        close_reasons=_literals(fields["close_reason"].annotation),
        browser_types=_literals(fields["browser_type"].annotation),
        optional_fields=tuple(name for name, info in fields.items() if not info.is_required()),
    )


def _literals(annotation: Any) -> tuple[str, ...]:
    """The string values of a ``Literal`` annotation, looking through ``X | None``."""
    if get_origin(annotation) is Literal:
        return tuple(str(value) for value in get_args(annotation))
    return tuple(value for arg in get_args(annotation) for value in _literals(arg))


def sdk_json(model: Any) -> dict[str, Any]:
    """A session as the SDK (and the API, a pydantic server) serialises it."""
    # Serialising includes the deprecated computed ``timeout_minutes``, which warns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        body: dict[str, Any] = json.loads(model.model_dump_json())
    return body


# --------------------------------------------------------------- the simulator's side


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SimulatorServer, httpx.Client]]:
    """A leaking account an hour into its life: live, ended, errored and timed-out sessions."""
    clock = ManualClock()
    account = SimulatedAccount(clock=clock, seed=23, profile="leak")
    for _ in range(120):
        account.advance(30)
    with (
        SimulatorServer(account, api_key=API_KEY, rate_limit=None) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as client,
    ):
        yield server, client


def _all_pages(client: httpx.Client, *, only_active: bool) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    page = 1
    while True:
        response = client.get(
            "/sessions",
            params={"page": page, "page_size": 100, "only_active": str(only_active).lower()},
        )
        assert response.status_code == 200
        pages.append(response.json())
        if not pages[-1]["has_next"]:
            return pages
        page += 1


@pytest.mark.slow  # a second of CPU or more: the full tier (tests/tiers.py)
def test_every_session_listing_page_validates_against_the_sdk_models(served) -> None:
    _, client = served
    pages = _all_pages(client, only_active=False)
    items = [item for page in pages for item in page["items"]]
    statuses = {item["status"] for item in items}
    assert {"active", "closed", "error", "timed_out"} <= statuses  # the check covers them all
    for page in pages:
        sdk().listing.model_validate(page)
        for item in page["items"]:
            sdk().session.model_validate(item)


def test_every_session_by_id_validates_against_the_sdk_model(served) -> None:
    _, client = served
    ids = [
        item["session_id"]
        for page in _all_pages(client, only_active=False)
        for item in page["items"]
    ]
    for session_id in ids:
        response = client.get(f"/sessions/{session_id}")
        assert response.status_code == 200
        sdk().session.model_validate(response.json())


def test_usage_validates_against_the_sdk_model(served) -> None:
    _, client = served
    response = client.get("/usage")
    assert response.status_code == 200
    sdk().usage.model_validate(response.json())


def test_stop_answers_a_closed_session_the_sdk_accepts(served) -> None:
    _, client = served
    live = _all_pages(client, only_active=True)[0]["items"][0]["session_id"]
    response = client.delete(f"/sessions/{live}/stop")
    assert response.status_code == 200
    stopped = sdk().session.model_validate(response.json())
    # The SDK takes any other status for a failed stop.
    assert (stopped.status, stopped.close_reason) == ("closed", "manual")


# --------------------------------------------- where the SDK and notte-api.md disagree


def test_sdk_statuses_add_authenticating_to_the_seed_and_the_exporter_keeps_any_status() -> None:
    # notte-api.md: the seed lists active|closed|error|timed_out and "expect further values";
    # the SDK's model is a closed Literal that would reject a future status. The exporter
    # follows notte-api.md: a status it does not know is kept (taken for live).
    assert set(sdk().statuses) == {"active", "authenticating", "closed", "error", "timed_out"}
    page = parse_page(_page([{**_minimal(), "status": "paused"}]))
    assert [s["status"] for s in page.sessions] == ["paused"]


def test_sdk_requires_last_accessed_at_and_idle_timeout_the_exporter_defaults_them() -> None:
    # notte-api.md: optional fields may be missing or null, idle_timeout_minutes defaults to
    # 3. The SDK's model requires both last_accessed_at and idle_timeout_minutes (or its
    # deprecated alias timeout_minutes). The exporter follows notte-api.md.
    required = {n for n, f in sdk().session.model_fields.items() if f.is_required()}
    assert required == {
        "session_id",
        "idle_timeout_minutes",
        "created_at",
        "last_accessed_at",
        "status",
    }
    page = parse_page(_page([_minimal()]))
    assert page.sessions[0]["idle_timeout_minutes"] == 3
    assert page.sessions[0]["last_accessed_at"] is None


def test_sdk_computes_a_missing_duration_the_exporter_takes_the_timestamps() -> None:
    # notte-api.md: duration is optional. The SDK reads it as a timedelta and, when missing,
    # computes it (closed_at - created_at, or now - created_at). The exporter agrees for ended
    # sessions: without a duration it uses the timestamps.
    session = parse_page(
        _page([{**_minimal(), "status": "closed", "closed_at": "2026-05-01T10:00:05.5Z"}])
    ).sessions[0]
    assert lifetime(session) == timedelta(seconds=5.5)


def test_sdk_browser_types_and_close_reasons_match_notte_api_md() -> None:
    assert set(sdk().browser_types) == {
        "chromium",
        "chrome",
        "firefox",
        "chrome-nightly",
        "chrome-turbo",
    }
    assert set(sdk().close_reasons) == {
        "manual",
        "idle_timeout",
        "max_duration",
        "error",
        "unknown",
    }


def test_sdk_has_no_headless_field_the_exporter_reads_it_as_an_extra() -> None:
    # The SDK dropped ``headless`` from its schema (kept only as an extra); the exporter still
    # reads it, defaulting to true as the SDK's legacy property does.
    assert "headless" not in sdk().session.model_fields
    assert parse_page(_page([_minimal()])).sessions[0]["headless"] is True


def _minimal() -> dict[str, Any]:
    return {"session_id": "s-1", "status": "active", "created_at": "2026-05-01T10:00:00Z"}


def _page(items: list[dict[str, Any]]) -> bytes:
    body = {"items": items, "page": 1, "page_size": 100, "has_next": False, "has_previous": False}
    return json.dumps(body).encode()


# ----------------------------------------------- generated from the SDK's models


_EARLIEST = datetime(1971, 1, 1)
_LATEST = datetime(2198, 12, 31)
_ZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7))])


def _timestamps() -> st.SearchStrategy[datetime]:
    """Naive (read as UTC by the exporter) and aware, with microseconds."""
    return st.datetimes(min_value=_EARLIEST, max_value=_LATEST, timezones=_ZONES)


@st.composite
def sdk_sessions(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """One session as the SDK would serialise it, and whether it is within the API's limits.

    Values the SDK accepts but the API documents as impossible (an idle timeout over 30
    minutes, an empty id, a byte total past any 64-bit counter) are drawn now and then: the
    exporter must skip exactly those.
    """
    status = draw(st.sampled_from(sdk().statuses))
    created = draw(_timestamps())
    closed = draw(_timestamps()) if status == "closed" else draw(st.none() | _timestamps())
    fields: dict[str, Any] = {
        "session_id": draw(st.text(max_size=40)),
        "idle_timeout_minutes": draw(st.integers(0, LONGEST_IDLE_TIMEOUT_MINUTES + 5)),
        "max_duration_minutes": draw(st.integers(0, LONGEST_MAX_DURATION_MINUTES + 5)),
        "created_at": created,
        "closed_at": closed,
        "last_accessed_at": draw(_timestamps()),
        "duration": draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400))),
        "status": status,
        "close_reason": draw(st.none() | st.sampled_from(sdk().close_reasons)),
        "error": draw(st.none() | st.text(max_size=20)),
        "proxies": draw(st.booleans()),
        "browser_type": draw(st.sampled_from(sdk().browser_types)),
        "network_request_bytes": draw(st.integers(0, 2**63)),
        "network_response_bytes": draw(st.integers(0, 2**63)),
        "solve_captchas": draw(st.none() | st.booleans()),
        "web_bot_auth": draw(st.booleans()),
    }
    body = sdk_json(sdk().session.model_validate(fields))
    # The SDK insists on a closed_at for a closed session; everything else optional may go.
    droppable = [n for n in sdk().optional_fields if not (n == "closed_at" and status == "closed")]
    for name in draw(st.sets(st.sampled_from(droppable))):
        body.pop(name, None)  # left out: the SDK's default stands for it
    for name in draw(st.sets(st.sampled_from(("close_reason", "error", "solve_captchas")))):
        if name in body:
            body[name] = None
    valid = (
        fields["session_id"] != ""
        and fields["idle_timeout_minutes"] <= LONGEST_IDLE_TIMEOUT_MINUTES
        and fields["max_duration_minutes"] <= LONGEST_MAX_DURATION_MINUTES
        and body.get("network_request_bytes", 0) < 2**63
        and body.get("network_response_bytes", 0) < 2**63
    )
    return body, valid


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@settings(
    max_examples=50,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(sdk_sessions(), max_size=6))
def test_parser_keeps_every_sdk_session_within_the_api_limits_and_skips_only_the_rest(
    generated: list[tuple[dict[str, Any], bool]],
) -> None:
    items = [body for body, _ in generated]
    expected = [valid for _, valid in generated]
    content = _page(items)
    for page in (parse_page(content), parse_live_page(content)):
        assert len(page.sessions) == sum(expected)
        assert len(page.invalid) == len(expected) - sum(expected)
    sessions = parse_page(content).sessions
    for body, session in zip([b for b, ok in generated if ok], sessions, strict=True):
        read = sdk().session.model_validate(body)
        assert session["session_id"] == read.session_id
        assert session["status"] == read.status
        assert session["browser_type"] == read.browser_type
        assert session["close_reason"] == read.close_reason
        assert session["created_at"] == _utc(read.created_at)
        assert session["network_request_bytes"] == read.network_request_bytes
        assert session["network_response_bytes"] == read.network_response_bytes
        if not is_live(session) and "duration" in body and read.duration <= LONGEST_LIFETIME:
            assert lifetime(session) == read.duration
