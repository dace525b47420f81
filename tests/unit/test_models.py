import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from notte_exporter.api.models import (
    API_UTC,
    LONGEST_LIFETIME,
    InvalidItem,
    NotJsonError,
    Session,
    is_live,
    last_activity,
    lifetime,
    parse_live_page,
    parse_page,
    parse_session,
)
from support import session_json


def parsed(**fields: object) -> Session:
    result = parse_session(session_json(**fields))
    assert not isinstance(result, InvalidItem), result
    return result


def test_unknown_fields_are_ignored() -> None:
    assert parsed(brand_new_field={"x": 1}, auth_ids=["a"])["session_id"] == "s-1"


@pytest.mark.parametrize("field", ["status", "browser_type", "close_reason"])
def test_unknown_enum_values_are_kept_not_rejected(field: str) -> None:
    assert parsed(**{field: "hibernating"})[field] == "hibernating"


@pytest.mark.parametrize(
    "stamp", ["2026-05-01T10:00:00.123456", "2026-05-01T10:00:00.123456Z",
              "2026-05-01T10:00:00.123456+00:00", "2026-05-01T12:00:00.123456+02:00"]
)  # fmt: skip
def test_naive_and_zoned_timestamps_are_the_same_utc_moment(stamp: str) -> None:
    assert parsed(created_at=stamp)["created_at"] == datetime(2026, 5, 1, 10, 0, 0, 123456, UTC)


@pytest.mark.parametrize(
    "stamp", ["2026-05-01T10:00:00", "2026-05-01T10:00:00Z", "2026-05-01T10:00:00+00:00"]
)
def test_utc_timestamps_share_one_tzinfo_so_a_poll_compares_them_cheaply(stamp: str) -> None:
    # Comparing datetimes whose tzinfo is the same object skips utcoffset() on both sides.
    assert parsed(created_at=stamp)["created_at"].tzinfo is API_UTC


def test_a_field_of_the_wrong_type_is_reported_not_defaulted() -> None:
    result = parse_session(session_json("s-7", network_request_bytes="lots"))
    assert isinstance(result, InvalidItem)
    assert "network_request_bytes" in result.problem


def test_iso8601_duration_gives_the_lifetime() -> None:
    assert lifetime(parsed(duration="PT1H2M3.5S")) == timedelta(hours=1, minutes=2, seconds=3.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("PT41.286072S", timedelta(seconds=41.286072)), ("P1DT5S", timedelta(days=1, seconds=5)),
     ("PT0S", timedelta(0)), ("P2W", timedelta(weeks=2))],
)  # fmt: skip
def test_iso8601_durations_from_the_api_are_read_by_pydantic(
    text: str, expected: timedelta
) -> None:
    assert lifetime(parsed(duration=text)) == expected


@pytest.mark.parametrize("text", ["P", "PT", "1H", "PT1H2", "-PT5S"])
def test_a_broken_or_negative_duration_falls_back_on_the_timestamps(text: str) -> None:
    session = parsed(duration=text, closed_at="2026-05-01T10:01:00Z")
    assert lifetime(session) == timedelta(minutes=1)


def test_a_malformed_duration_falls_back_on_the_timestamps() -> None:
    session = parsed(duration="about a minute", closed_at="2026-05-01T10:01:00Z")
    assert lifetime(session) == timedelta(minutes=1)


@pytest.mark.parametrize(
    ("field", "default"),
    [("max_duration_minutes", 15), ("idle_timeout_minutes", 3), ("proxies", False),
     ("headless", True), ("network_request_bytes", 0), ("browser_type", "chromium"),
     ("last_accessed_at", None), ("duration", None), ("close_reason", None)],
)  # fmt: skip
def test_optional_fields_may_be_null(field: str, default: object) -> None:
    assert parsed(**{field: None})[field] == default


def test_optional_fields_may_be_missing() -> None:
    minimal = {"session_id": "s-1", "status": "active", "created_at": "2026-05-01T10:00:00Z"}
    session = parse_session(minimal)
    assert not isinstance(session, InvalidItem)
    assert last_activity(session) == session["created_at"]
    assert session["max_duration_minutes"] == 15


@pytest.mark.parametrize("missing", ["session_id", "status", "created_at"])
def test_an_item_without_an_essential_field_is_reported_not_raised(missing: str) -> None:
    body = session_json()
    del body[missing]
    result = parse_session(body)
    assert isinstance(result, InvalidItem)
    assert missing in result.problem


def test_an_item_that_is_not_an_object_is_reported() -> None:
    assert isinstance(parse_session(["not", "a", "session"]), InvalidItem)


def test_an_unparseable_timestamp_is_reported_with_the_session_id() -> None:
    result = parse_session(session_json("s-9", created_at="yesterday"))
    assert isinstance(result, InvalidItem)
    assert result.session_id == "s-9"
    assert "created_at" in result.problem


@pytest.mark.parametrize("status", ["closed", "error", "timed_out"])
def test_end_statuses_are_not_live(status: str) -> None:
    assert not is_live(parsed(status=status))


def test_a_new_status_is_live_unless_the_session_has_closed() -> None:
    assert is_live(parsed(status="authenticating"))
    assert not is_live(parsed(status="archived", closed_at="2026-05-01T10:05:00Z"))


def test_lifetime_prefers_the_reported_duration_then_the_timestamps() -> None:
    assert lifetime(parsed(duration="PT41S")) == timedelta(seconds=41)
    assert lifetime(parsed(duration=None, closed_at="2026-05-01T10:02:00Z")) == timedelta(minutes=2)
    assert lifetime(parsed(duration=None)) is None


def page_bytes(*items: object, has_next: bool = False) -> bytes:
    body = {"items": list(items), "page": 1, "page_size": 100, "has_next": has_next}
    return json.dumps(body).encode()


def test_a_page_is_read_from_its_bytes() -> None:
    page = parse_page(page_bytes(session_json("a"), session_json("b"), has_next=True))
    assert [s["session_id"] for s in page.sessions] == ["a", "b"]
    assert page.invalid == []
    assert page.has_next


def test_a_broken_item_costs_only_itself() -> None:
    broken = session_json("bad", created_at="yesterday")
    page = parse_page(page_bytes(session_json("a"), broken, ["not", "an", "object"]))
    assert [s["session_id"] for s in page.sessions] == ["a"]
    assert [item.session_id for item in page.invalid] == ["bad", None]
    assert "created_at" in page.invalid[0].problem


def test_both_paths_read_a_session_alike() -> None:
    odd = session_json("odd", created_at="2026-05-01T12:00:00+02:00", headless=None, proxies=None)
    fast = parse_page(page_bytes(odd)).sessions
    slow = parse_page(page_bytes(odd, {"broken": True})).sessions
    assert fast == slow
    assert fast[0]["created_at"] == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert (fast[0]["headless"], fast[0]["proxies"]) == (True, False)


def test_a_live_page_reads_the_same_sessions_without_what_only_an_ended_one_needs() -> None:
    body = page_bytes(session_json("a"), session_json("b", browser_type="firefox", proxies=True))
    whole = parse_page(body).sessions
    live = parse_live_page(body).sessions
    assert live == [
        {key: value for key, value in session.items() if key not in ("duration", "close_reason")}
        for session in whole
    ]


def test_a_malformed_duration_does_not_cost_a_live_session_its_place_in_the_live_listing() -> None:
    body = page_bytes(session_json("a", duration=41), session_json("b", close_reason=["?"]))
    page = parse_live_page(body)
    assert [s["session_id"] for s in page.sessions] == ["a", "b"]
    assert page.invalid == []


def test_a_broken_live_item_costs_only_itself() -> None:
    broken = session_json("bad", network_request_bytes="lots")
    page = parse_live_page(page_bytes(session_json("a"), broken))
    assert [s["session_id"] for s in page.sessions] == ["a"]
    assert [item.session_id for item in page.invalid] == ["bad"]
    assert "network_request_bytes" in page.invalid[0].problem


def test_a_body_that_is_not_json_is_told_apart_from_one_that_is_not_a_listing() -> None:
    with pytest.raises(NotJsonError):
        parse_page(b"<html>proxy</html>")
    with pytest.raises(ValidationError):
        parse_page(b'{"sessions": []}')


OUT_OF_BOUNDS = [
    pytest.param("network_request_bytes", -1, id="negative-bytes"),
    pytest.param("network_response_bytes", 2**63, id="bytes-2^63"),
    pytest.param("network_request_bytes", 10**400, id="401-digit-bytes"),
    pytest.param("idle_timeout_minutes", -1, id="negative-idle-timeout"),
    pytest.param("idle_timeout_minutes", 31, id="idle-timeout-past-30"),
    pytest.param("idle_timeout_minutes", -1e10, id="idle-timeout-minus-1e10"),
    pytest.param("max_duration_minutes", 1441, id="max-duration-past-a-day"),
    pytest.param("max_duration_minutes", 1e10, id="max-duration-1e10"),
    pytest.param("created_at", "9999-12-31T23:59:59Z", id="created-in-9999"),
    pytest.param("created_at", "2199-12-31T23:00:00-05:00", id="created-in-2200-utc"),
    pytest.param("created_at", "1969-12-31T23:59:59", id="created-before-1970"),
    pytest.param("last_accessed_at", "0001-01-01T00:00:00", id="accessed-in-year-1"),
    pytest.param("closed_at", "2200-01-01T00:00:00Z", id="closed-in-2200"),
]


@pytest.mark.parametrize(("field", "value"), OUT_OF_BOUNDS)
def test_a_number_or_time_out_of_bounds_makes_the_item_invalid(field: str, value: object) -> None:
    result = parse_session(session_json("s-9", **{field: value}))
    assert isinstance(result, InvalidItem)
    assert result.session_id == "s-9"
    assert field in result.problem


@pytest.mark.parametrize(("field", "value"), OUT_OF_BOUNDS)
def test_the_bounds_hold_on_a_live_page_read_in_one_call(field: str, value: object) -> None:
    page = parse_live_page(page_bytes(session_json("a"), session_json("bad", **{field: value})))
    assert [s["session_id"] for s in page.sessions] == ["a"]
    assert [item.session_id for item in page.invalid] == ["bad"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("network_request_bytes", 2**63 - 1), ("network_response_bytes", 0),
     ("idle_timeout_minutes", 0), ("idle_timeout_minutes", 30),
     ("max_duration_minutes", 0), ("max_duration_minutes", 1440),
     ("created_at", "1970-01-01T00:00:00Z"), ("created_at", "2199-12-31T23:59:59.999999"),
     ("closed_at", "2200-01-01T01:00:00+02:00")],
)  # fmt: skip
def test_every_value_within_the_bounds_is_read(field: str, value: object) -> None:
    assert not isinstance(parse_session(session_json(**{field: value})), InvalidItem)


@pytest.mark.parametrize("text", ["P999999999D", "P367D"])
def test_a_duration_longer_than_any_session_lives_falls_back_on_the_timestamps(text: str) -> None:
    session = parsed(duration=text, closed_at="2026-05-01T10:01:00Z")
    assert lifetime(session) == timedelta(minutes=1)


def test_the_latest_session_plus_the_longest_lifetime_is_still_a_date() -> None:
    session = parsed(created_at="2199-12-31T23:59:59Z", duration="P366D")
    lived = lifetime(session)
    assert lived == LONGEST_LIFETIME
    assert session["created_at"] + lived > session["created_at"]
