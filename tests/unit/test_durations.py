import pytest

from notte_exporter.durations import format_duration, parse_duration, prometheus_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("500ms", 0.5), ("30", 30),
     ("2.5", 2.5), ("1d", 86400), ("1.5s", 1.5), ("1m30s", 90), ("2h", 7200), ("1.5m", 90),
     ("300us", 0.0003), ("1w", 604800), (" 30s ", 30), ("+2s", 2)],
)  # fmt: skip
def test_prometheus_and_go_durations_and_plain_seconds_are_accepted(
    text: str, seconds: float
) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "seconds"), [("-5s", -5), ("-1.5", -1.5), ("-1m30s", -90)])
def test_a_sign_is_parsed_so_that_the_limit_can_refuse_it(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5 m", "s", "1x", "--5s", "5s-", "1.2.3s"])
def test_malformed_durations_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match=r"use units like 30s, 1m30s, 1\.5s, 500ms"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["1s1h", "1m1m", "30s5m"])
def test_units_out_of_order_are_refused_by_the_one_parser(text: str) -> None:
    with pytest.raises(ValueError, match="largest first"):
        parse_duration(text)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("1h30m", 5400), ("1d", 86400)])
def test_prometheus_durations_for_promql_use_the_same_parser(text: str, seconds: float) -> None:
    assert prometheus_duration(text) == seconds


@pytest.mark.parametrize("text", ["1.5s", "30", "-5s", "10us", "1s1h", " 5m"])
def test_what_prometheus_refuses_is_refused_for_promql(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        prometheus_duration(text)


def test_durations_are_formatted_the_way_operators_write_them() -> None:
    assert format_duration(90) == "1m30s"
    assert format_duration(24) == "24s"
    assert format_duration(2.5) == "2.5s"
    assert format_duration(0.5) == "500ms"
    assert format_duration(-5) == "-5s"
    assert format_duration(0) == "0s"


@pytest.mark.parametrize("seconds", [90, 24, 2.5, 0.5, 3600, 0.001, 86400])
def test_formatted_durations_parse_back(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
