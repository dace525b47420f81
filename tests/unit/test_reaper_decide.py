"""Which sessions the reaper stops, as pure functions: matching, confirmation, limits, savings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from notte_exporter.reaper.decide import (
    Candidate,
    Match,
    Matcher,
    RollingHour,
    confirm,
    saved_seconds,
    take,
)
from notte_exporter.reaper.policy import ReaperPolicy, parse
from support import at, parse_one

NOW = at("2026-05-01T12:00:00")


def policy(text: str) -> ReaperPolicy:
    return parse(text.encode(), Path("reaper.yaml"))


IDLE_AND_OLD = policy(
    """\
exclude_sessions: [excluded]
policies:
  - name: idle-10m
    idle_longer_than: 10m
  - name: old-idle-chrome
    older_than: 2h
    idle_longer_than: 1m
    browser_types: [chrome]
"""
)


def session(session_id: str = "s", *, age: float, idle: float, browser: str = "chromium"):
    return parse_one(
        session_id,
        created_at=(NOW - timedelta(minutes=age)).isoformat(),
        last_accessed_at=(NOW - timedelta(minutes=idle)).isoformat(),
        browser_type=browser,
    )


def matched(found: Match | None) -> tuple[str, ...]:
    return () if found is None else found.policies


def test_idle_is_measured_from_the_last_access_and_must_be_longer() -> None:
    matcher = Matcher(IDLE_AND_OLD, NOW)
    assert matched(matcher.match(session(age=30, idle=10.01))) == ("idle-10m",)
    assert matched(matcher.match(session(age=30, idle=10))) == ()


def test_a_session_never_accessed_is_idle_since_it_started() -> None:
    never = parse_one(created_at=(NOW - timedelta(minutes=11)).isoformat(), last_accessed_at=None)
    assert matched(Matcher(IDLE_AND_OLD, NOW).match(never)) == ("idle-10m",)


def test_every_condition_of_a_policy_must_hold() -> None:
    matcher = Matcher(IDLE_AND_OLD, NOW)
    old_busy_chrome = session(age=180, idle=0.5, browser="chrome")
    old_idle_firefox = session(age=180, idle=5, browser="firefox")
    old_idle_chrome = session(age=180, idle=5, browser="chrome")
    assert matched(matcher.match(old_busy_chrome)) == ()
    assert matched(matcher.match(old_idle_firefox)) == ()
    assert matched(matcher.match(old_idle_chrome)) == ("old-idle-chrome",)


def test_a_session_lists_every_policy_it_matches_in_file_order() -> None:
    found = Matcher(IDLE_AND_OLD, NOW).match(session(age=180, idle=20, browser="chrome"))
    assert matched(found) == ("idle-10m", "old-idle-chrome")


def test_an_excluded_session_matches_nothing() -> None:
    assert Matcher(IDLE_AND_OLD, NOW).match(session("excluded", age=999, idle=999)) is None


def match(session_id: str, *policies: str, age: float = 60) -> Match:
    return Match(
        session_id=session_id,
        browser_type="chromium",
        created_at=NOW - timedelta(minutes=age),
        last_activity=NOW - timedelta(minutes=age),
        idle_timeout_minutes=3,
        max_duration_minutes=15,
        policies=policies,
    )


def by_id(*matches: Match) -> dict[str, Match]:
    return {found.session_id: found for found in matches}


def test_a_match_at_one_poll_only_is_never_a_candidate() -> None:
    assert confirm({}, by_id(match("a", "p")), {"p"}) == []
    assert confirm(by_id(match("a", "p")), {}, {"p"}) == []


def test_the_same_policy_at_two_polls_in_a_row_makes_a_candidate() -> None:
    now = match("a", "p")
    assert confirm(by_id(match("a", "p")), by_id(now), {"p"}) == [Candidate(now, "p")]


def test_two_different_policies_at_two_polls_make_no_candidate() -> None:
    assert confirm(by_id(match("a", "p")), by_id(match("a", "q")), {"p", "q"}) == []


def test_a_policy_changed_between_the_polls_confirms_nothing() -> None:
    assert confirm(by_id(match("a", "p")), by_id(match("a", "p")), set()) == []


def test_a_session_goes_to_the_first_policy_that_matched_it_both_times() -> None:
    (candidate,) = confirm(by_id(match("a", "q")), by_id(match("a", "p", "q")), {"p", "q"})
    assert candidate.policy == "q"


def test_candidates_come_oldest_first() -> None:
    current = by_id(match("young", "p", age=5), match("old", "p", age=50), match("mid", "p", age=9))
    found = confirm(current, current, {"p"})
    assert [c.match.session_id for c in found] == ["old", "mid", "young"]


def thousand_candidates() -> list[Candidate]:
    current = by_id(*(match(f"s{index:04d}", "p", age=index + 1) for index in range(1000)))
    return confirm(current, current, {"p"})


def test_a_poll_takes_at_most_its_limit_of_a_thousand_candidates_oldest_first() -> None:
    candidates = thousand_candidates()
    chosen = take(candidates, per_poll=5, left_this_hour=60)
    assert [c.match.session_id for c in chosen] == ["s0999", "s0998", "s0997", "s0996", "s0995"]


def test_the_hourly_limit_holds_against_a_thousand_candidates_over_many_polls() -> None:
    candidates = thousand_candidates()
    hour = RollingHour()
    stopped: list[str] = []
    moment = NOW
    for _ in range(120):  # an hour of 30-second polls
        left = 60 - hour.used(moment)
        for candidate in take(candidates, per_poll=5, left_this_hour=left):
            hour.record(moment)
            stopped.append(candidate.match.session_id)
        candidates = [c for c in candidates if c.match.session_id not in stopped]
        moment += timedelta(seconds=30)
    assert len(stopped) == 60
    assert stopped == [f"s{index:04d}" for index in range(999, 939, -1)]


def test_the_hour_rolls_and_lets_the_next_stops_through() -> None:
    hour = RollingHour()
    for minute in range(3):
        hour.record(NOW + timedelta(minutes=minute))
    assert hour.used(NOW + timedelta(minutes=59)) == 3
    assert hour.used(NOW + timedelta(minutes=61)) == 1


def test_nothing_is_taken_once_the_hour_is_spent() -> None:
    assert take(thousand_candidates(), per_poll=5, left_this_hour=0) == []


def test_a_stop_saves_the_time_until_the_idle_timeout_that_comes_first() -> None:
    found = Match("s", "chromium", NOW - timedelta(minutes=30), NOW - timedelta(minutes=4),
                  idle_timeout_minutes=10, max_duration_minutes=60, policies=("p",))  # fmt: skip
    assert saved_seconds(found, NOW) == 6 * 60


def test_a_stop_saves_the_time_until_the_max_duration_that_comes_first() -> None:
    found = Match("s", "chromium", NOW - timedelta(minutes=55), NOW - timedelta(minutes=1),
                  idle_timeout_minutes=10, max_duration_minutes=60, policies=("p",))  # fmt: skip
    assert saved_seconds(found, NOW) == 5 * 60


def test_a_stop_after_notte_would_have_closed_it_saves_nothing() -> None:
    overdue = Match("s", "chromium", NOW - timedelta(minutes=95), NOW - timedelta(minutes=88),
                    idle_timeout_minutes=5, max_duration_minutes=30, policies=("p",))  # fmt: skip
    assert saved_seconds(overdue, NOW) == 0
