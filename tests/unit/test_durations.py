from datetime import timedelta

import pytest

from notte_exporter.durations import format_duration, parse_duration, parse_iso8601_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("500ms", 0.5), ("30", 30),
     ("2.5", 2.5), ("1d", 86400)],
)  # fmt: skip
def test_prometheus_durations_and_plain_seconds_are_accepted(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5 m", "1m1h", "-5s", "s", "1.5m"])
def test_malformed_durations_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="use a number of seconds or units like 30s"):
        parse_duration(text)


def test_durations_are_formatted_the_way_operators_write_them() -> None:
    assert format_duration(90) == "1m30s"
    assert format_duration(24) == "24s"
    assert format_duration(2.5) == "2.5s"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT41.286072S", timedelta(seconds=41.286072)),
        ("PT1H2M3.5S", timedelta(hours=1, minutes=2, seconds=3.5)),
        ("P1DT5S", timedelta(days=1, seconds=5)),
        ("PT0S", timedelta(0)),
        ("P2W", timedelta(weeks=2)),
    ],
)
def test_iso8601_durations_from_the_api_are_parsed(text: str, expected: timedelta) -> None:
    assert parse_iso8601_duration(text) == expected


@pytest.mark.parametrize("text", ["P", "PT", "1H", "P1Y", "PT1H2", "P1DT"])
def test_ambiguous_or_broken_iso8601_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid ISO 8601 duration"):
        parse_iso8601_duration(text)
