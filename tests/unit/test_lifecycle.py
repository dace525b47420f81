"""The lifecycle tracker on its own: starts, ends, traffic and memory, counted exactly once."""

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from notte_exporter.api.models import InvalidItem, Session, parse_session
from notte_exporter.labels import BROWSER_TYPES, BoundedLabel
from notte_exporter.polling.lifecycle import LifecycleMetrics, LifecycleTracker
from support import at, session_json

WATCH_START = at("2026-05-01T10:00:00")


def session(session_id: str = "s-1", **fields: object) -> Session:
    fields.setdefault("created_at", "2026-05-01T10:01:00Z")
    result = parse_session(session_json(session_id, **fields))
    assert not isinstance(result, InvalidItem)
    return result


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def tracker(registry: CollectorRegistry) -> LifecycleTracker:
    return LifecycleTracker(
        LifecycleMetrics(registry, BROWSER_TYPES),
        BoundedLabel(BROWSER_TYPES),
        watch_start=WATCH_START,
        max_pending=3,
        max_ended=5,
        pending_timeout=timedelta(minutes=15),
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    result = registry.get_sample_value(name, labels)
    assert result is not None, (name, labels)
    return result


def closed(registry: CollectorRegistry, status: str, reason: str, browser: str = "chromium"):
    return value(
        registry,
        "notte_sessions_closed_total",
        browser_type=browser,
        status=status,
        close_reason=reason,
    )


NOW = at("2026-05-01T10:05:00")


def test_every_known_label_set_is_present_at_zero_from_the_start(registry, tracker) -> None:
    for browser in BROWSER_TYPES:
        assert value(registry, "notte_sessions_started_total", browser_type=browser) == 0
        assert closed(registry, "unknown", "unknown", browser) == 0
        assert closed(registry, "timed_out", "idle_timeout", browser) == 0


def test_a_session_that_began_while_watched_counts_as_started_once(registry, tracker) -> None:
    tracker.observe_live([session()], NOW)
    tracker.observe_live([session()], NOW + timedelta(seconds=30))
    assert value(registry, "notte_sessions_started_total", browser_type="chromium") == 1


def test_a_session_running_before_the_exporter_started_is_not_a_start(registry, tracker) -> None:
    tracker.observe_live([session(created_at="2026-05-01T09:59:00Z")], NOW)
    assert value(registry, "notte_sessions_started_total", browser_type="chromium") == 0


def test_traffic_of_a_new_session_counts_in_full(registry, tracker) -> None:
    tracker.observe_live([session(network_request_bytes=100, network_response_bytes=900)], NOW)
    assert (
        value(registry, "notte_network_request_bytes_total", browser_type="chromium", proxy="false")
        == 100
    )
    assert (
        value(
            registry, "notte_network_response_bytes_total", browser_type="chromium", proxy="false"
        )
        == 900
    )


def test_traffic_before_the_exporter_started_is_not_counted_again(registry, tracker) -> None:
    old = {"created_at": "2026-05-01T09:00:00Z"}
    tracker.observe_live([session(network_request_bytes=5000, **old)], NOW)
    tracker.observe_live([session(network_request_bytes=5300, **old)], NOW)
    assert (
        value(registry, "notte_network_request_bytes_total", browser_type="chromium", proxy="false")
        == 300
    )


def test_traffic_counts_the_growth_between_observations(registry, tracker) -> None:
    for total in (10, 15, 40):
        tracker.observe_live([session(network_response_bytes=total)], NOW)
    assert (
        value(
            registry, "notte_network_response_bytes_total", browser_type="chromium", proxy="false"
        )
        == 40
    )


def test_a_total_that_goes_down_never_makes_the_counter_go_down_or_recount(
    registry, tracker
) -> None:
    for total in (100, 20, 60, 130):
        tracker.observe_live([session(network_request_bytes=total)], NOW)
    assert (
        value(registry, "notte_network_request_bytes_total", browser_type="chromium", proxy="false")
        == 130
    )


def test_a_vanished_session_is_pending_until_its_end_is_learned(registry, tracker) -> None:
    tracker.observe_live([session()], NOW)
    tracker.observe_live([], NOW)
    assert tracker.pending_ids() == ["s-1"]
    assert closed(registry, "closed", "manual") == 0


def test_a_learned_end_counts_once_with_status_reason_duration_and_final_traffic(
    registry, tracker
) -> None:
    tracker.observe_live([session(network_request_bytes=10)], NOW)
    tracker.observe_live([], NOW)
    final = session(
        status="timed_out",
        close_reason="idle_timeout",
        closed_at="2026-05-01T10:04:00Z",
        duration="PT180S",
        network_request_bytes=25,
    )
    assert tracker.observe_final(final, NOW)
    assert not tracker.observe_final(final, NOW)
    assert closed(registry, "timed_out", "idle_timeout") == 1
    assert value(registry, "notte_session_duration_seconds_count", browser_type="chromium") == 1
    assert value(registry, "notte_session_duration_seconds_sum", browser_type="chromium") == 180
    assert (
        value(registry, "notte_network_request_bytes_total", browser_type="chromium", proxy="false")
        == 25
    )
    assert tracker.pending_ids() == []


def test_a_session_that_started_and_ended_between_polls_counts_as_start_and_end(
    registry, tracker
) -> None:
    brief = session(
        status="closed", close_reason="manual", closed_at="2026-05-01T10:02:00Z",
        network_response_bytes=700,
    )  # fmt: skip
    assert tracker.observe_final(brief, NOW)
    assert value(registry, "notte_sessions_started_total", browser_type="chromium") == 1
    assert closed(registry, "closed", "manual") == 1
    assert (
        value(
            registry, "notte_network_response_bytes_total", browser_type="chromium", proxy="false"
        )
        == 700
    )


def test_history_of_sessions_from_before_the_exporter_started_is_ignored(registry, tracker) -> None:
    old = session(status="closed", close_reason="manual", created_at="2026-05-01T09:00:00Z")
    assert not tracker.observe_final(old, NOW)
    assert closed(registry, "closed", "manual") == 0


def test_a_session_that_comes_back_to_the_live_list_was_a_hiccup_not_an_end(
    registry, tracker
) -> None:
    tracker.observe_live([session(network_request_bytes=10)], NOW)
    tracker.observe_live([], NOW)
    tracker.observe_live([session(network_request_bytes=30)], NOW)
    assert tracker.pending_ids() == []
    assert value(registry, "notte_sessions_started_total", browser_type="chromium") == 1
    assert (
        value(registry, "notte_network_request_bytes_total", browser_type="chromium", proxy="false")
        == 30
    )
    assert closed(registry, "unknown", "unknown") == 0


def test_a_session_the_api_no_longer_knows_ends_as_unknown(registry, tracker) -> None:
    tracker.observe_live([session()], NOW)
    tracker.observe_live([], NOW)
    tracker.observe_unknown("s-1", NOW)
    tracker.observe_unknown("s-1", NOW)
    assert closed(registry, "unknown", "unknown") == 1


def test_an_end_not_learned_within_the_pending_timeout_counts_as_unknown_once(
    registry, tracker
) -> None:
    tracker.observe_live([session()], NOW)
    for minutes in range(0, 16):  # many polls within 15 minutes do not give up
        tracker.observe_live([], NOW + timedelta(minutes=minutes))
    assert closed(registry, "unknown", "unknown") == 0
    tracker.observe_live([], NOW + timedelta(minutes=15, seconds=1))
    tracker.observe_live([], NOW + timedelta(minutes=20))
    assert closed(registry, "unknown", "unknown") == 1
    late = session(status="closed", close_reason="manual", closed_at="2026-05-01T10:03:00Z")
    assert not tracker.observe_final(late, NOW)
    assert closed(registry, "closed", "manual") == 0


def test_a_stale_live_listing_after_an_end_never_restarts_or_recounts(registry, tracker) -> None:
    tracker.observe_live([session(network_request_bytes=10)], NOW)
    tracker.observe_live([], NOW)
    tracker.observe_final(session(status="closed", close_reason="manual"), NOW)
    tracker.observe_live([session(network_request_bytes=99)], NOW)
    tracker.observe_live([], NOW)
    assert value(registry, "notte_sessions_started_total", browser_type="chromium") == 1
    assert closed(registry, "closed", "manual") == 1
    assert (
        value(registry, "notte_network_request_bytes_total", browser_type="chromium", proxy="false")
        == 10
    )
    assert tracker.pending_ids() == []


def test_unknown_final_statuses_and_reasons_are_labelled_unknown(registry, tracker) -> None:
    tracker.observe_live([session()], NOW)
    tracker.observe_live([], NOW)
    tracker.observe_final(
        session(status="evaporated", close_reason="cosmic_ray", closed_at="2026-05-01T10:03:00Z"),
        NOW,
    )
    assert closed(registry, "unknown", "unknown") == 1


def test_pending_sessions_are_bounded(registry, tracker) -> None:
    tracker.observe_live([session(f"s-{i}") for i in range(5)], NOW)
    tracker.observe_live([], NOW)
    assert len(tracker.pending_ids()) == 3
    assert closed(registry, "unknown", "unknown") == 2


def test_remembered_ends_are_bounded_by_count(tracker) -> None:
    for i in range(20):
        tracker.observe_final(session(f"s-{i}", status="closed", close_reason="manual"), NOW)
    assert tracker.stats().ended_remembered == 5


def test_remembered_ends_are_forgotten_once_older_than_any_session_lives(tracker) -> None:
    tracker.observe_final(session(status="closed", close_reason="manual"), NOW)
    tracker.observe_live([], NOW + timedelta(hours=26))
    assert tracker.stats().ended_remembered == 0


def browser_seconds(registry: CollectorRegistry, browser: str = "chromium") -> float:
    return value(registry, "notte_sessions_browser_seconds_total", browser_type=browser)


def idle_seconds(registry: CollectorRegistry, reason: str, browser: str = "chromium") -> float:
    return value(
        registry, "notte_sessions_idle_seconds_total", browser_type=browser, close_reason=reason
    )


def test_cost_counters_start_at_zero_for_every_known_label_set(registry, tracker) -> None:
    for browser in BROWSER_TYPES:
        assert browser_seconds(registry, browser) == 0
        for reason in ("manual", "idle_timeout", "max_duration", "error", "unknown"):
            assert idle_seconds(registry, reason, browser) == 0
        for proxy in ("true", "false"):
            labels = {"browser_type": browser, "proxy": proxy}
            assert value(registry, "notte_network_request_bytes_total", **labels) == 0
            assert value(registry, "notte_network_response_bytes_total", **labels) == 0


def test_browser_time_accrues_poll_to_poll_from_the_sessions_start(registry, tracker) -> None:
    tracker.observe_live([session()], NOW)  # created 10:01, seen 10:05
    assert browser_seconds(registry) == 240
    tracker.observe_live([session()], NOW + timedelta(seconds=30))
    assert browser_seconds(registry) == 270


def test_browser_time_before_the_exporter_started_is_not_counted(registry, tracker) -> None:
    tracker.observe_live([session(created_at="2026-05-01T08:00:00Z")], NOW)
    assert browser_seconds(registry) == 300  # since WATCH_START (10:00), not 08:00


def test_the_learned_end_adds_the_remainder_up_to_closed_at(registry, tracker) -> None:
    tracker.observe_live([session()], NOW)
    tracker.observe_live([], NOW + timedelta(seconds=30))
    tracker.observe_final(
        session(status="closed", close_reason="manual", closed_at="2026-05-01T10:05:20Z"),
        NOW + timedelta(seconds=60),
    )
    assert browser_seconds(registry) == 260  # 10:01 to 10:05:20


def test_an_end_before_the_last_live_sighting_adds_nothing_and_never_subtracts(
    registry, tracker
) -> None:
    tracker.observe_live([session()], NOW)
    tracker.observe_live([], NOW + timedelta(seconds=30))
    tracker.observe_final(
        session(status="closed", close_reason="manual", closed_at="2026-05-01T10:04:00Z"),
        NOW + timedelta(seconds=30),
    )
    assert browser_seconds(registry) == 240


def test_a_session_seen_only_ended_counts_its_whole_life(registry, tracker) -> None:
    brief = session(status="closed", close_reason="manual", closed_at="2026-05-01T10:02:30Z")
    tracker.observe_final(brief, NOW)
    assert browser_seconds(registry) == 90


def test_idle_time_is_closed_at_minus_last_access_by_close_reason(registry, tracker) -> None:
    tracker.observe_live([session()], NOW)
    tracker.observe_live([], NOW + timedelta(seconds=30))
    leaked = session(
        status="timed_out",
        close_reason="idle_timeout",
        last_accessed_at="2026-05-01T10:02:00Z",
        closed_at="2026-05-01T10:05:00Z",
    )
    tracker.observe_final(leaked, NOW + timedelta(seconds=30))
    tracker.observe_final(leaked, NOW + timedelta(seconds=60))
    assert idle_seconds(registry, "idle_timeout") == 180
    assert idle_seconds(registry, "manual") == 0


def test_idle_time_before_the_exporter_started_is_not_counted(registry, tracker) -> None:
    old = {"created_at": "2026-05-01T09:00:00Z", "last_accessed_at": "2026-05-01T09:58:00Z"}
    tracker.observe_live([session(**old)], NOW)
    tracker.observe_live([], NOW)
    ended = session(
        status="timed_out", close_reason="idle_timeout", closed_at="2026-05-01T10:01:00Z", **old
    )
    tracker.observe_final(ended, NOW)
    assert idle_seconds(registry, "idle_timeout") == 60  # from WATCH_START, not 09:58


def test_proxied_traffic_is_labelled_proxy_true(registry, tracker) -> None:
    tracker.observe_live([session(proxies=True, network_response_bytes=5000)], NOW)
    tracker.observe_live([session("s-2", network_response_bytes=7)], NOW)
    proxied = {"browser_type": "chromium", "proxy": "true"}
    direct = {"browser_type": "chromium", "proxy": "false"}
    assert value(registry, "notte_network_response_bytes_total", **proxied) == 5000
    assert value(registry, "notte_network_response_bytes_total", **direct) == 7


def test_an_unknown_end_adds_no_browser_or_idle_time(registry, tracker) -> None:
    tracker.observe_live([session()], NOW)
    tracker.observe_live([], NOW + timedelta(seconds=10))
    tracker.observe_unknown("s-1", NOW + timedelta(seconds=20))
    assert browser_seconds(registry) == 240
    assert idle_seconds(registry, "unknown") == 0


def test_a_listing_read_page_by_page_counts_what_the_whole_listing_counts(registry) -> None:
    def counted(pages: list[list[Session]]) -> list[float]:
        registry = CollectorRegistry()
        tracker = LifecycleTracker(
            LifecycleMetrics(registry, BROWSER_TYPES),
            BoundedLabel(BROWSER_TYPES),
            watch_start=WATCH_START,
        )
        tracker.observe_live([session(f"s-{i}", network_request_bytes=i) for i in range(6)], NOW)
        later = NOW + timedelta(seconds=30)
        listing = tracker.begin_listing(later)
        for page in pages:
            listing.add(page)
        listing.complete()
        return [
            value(registry, "notte_sessions_started_total", browser_type="chromium"),
            value(registry, "notte_network_request_bytes_total", browser_type="chromium",
                  proxy="false"),
            value(registry, "notte_sessions_browser_seconds_total", browser_type="chromium"),
            float(len(tracker.pending_ids())),
        ]  # fmt: skip

    fleet = [session(f"s-{i}", network_request_bytes=10 * i) for i in (0, 1, 2, 3, 6, 7)]
    assert counted([fleet[:2], fleet[2:5], fleet[5:]]) == counted([fleet])
    assert counted([fleet[:2], fleet[2:5], fleet[5:]]) == [
        8,
        15 + 184,
        6 * 240 + 4 * 30 + 2 * 270,
        2,
    ]


def test_a_listing_that_fails_part_way_counts_its_pages_and_ends_nothing(registry, tracker) -> None:
    tracker.observe_live([session("s-1"), session("s-2", network_request_bytes=5)], NOW)
    listing = tracker.begin_listing(NOW + timedelta(seconds=30))
    listing.add([session("s-2", network_request_bytes=40), session("s-3")])
    listing.abandon()
    assert tracker.pending_ids() == []
    assert tracker.stats().live == 3
    assert value(registry, "notte_sessions_started_total", browser_type="chromium") == 3
    assert (
        value(registry, "notte_network_request_bytes_total", browser_type="chromium", proxy="false")
        == 40
    )
    # s-1, not on the pages read, is still live: the next whole listing decides.
    tracker.observe_live([session("s-2", network_request_bytes=40)], NOW + timedelta(minutes=1))
    assert sorted(tracker.pending_ids()) == ["s-1", "s-3"]


def test_a_session_listed_twice_in_one_listing_counts_once(registry, tracker) -> None:
    listing = tracker.begin_listing(NOW)
    first = listing.add([session("s-1", network_request_bytes=10)])
    again = listing.add([session("s-1", network_request_bytes=25), session("s-2")])
    listing.complete()
    assert [s["session_id"] for s in first + again] == ["s-1", "s-2"]
    assert value(registry, "notte_sessions_started_total", browser_type="chromium") == 2
    assert (
        value(registry, "notte_network_request_bytes_total", browser_type="chromium", proxy="false")
        == 10
    )
    # What the later sighting showed beyond the first is counted by the next listing.
    tracker.observe_live([session("s-1", network_request_bytes=25), session("s-2")], NOW)
    assert (
        value(registry, "notte_network_request_bytes_total", browser_type="chromium", proxy="false")
        == 25
    )


def test_a_listing_hands_back_only_live_sessions(tracker) -> None:
    listing = tracker.begin_listing(NOW)
    fresh = listing.add(
        [session("s-1"), session("s-2", status="closed", closed_at="2026-05-01T10:02:00Z")]
    )
    listing.complete()
    assert [s["session_id"] for s in fresh] == ["s-1"]


def test_a_session_whose_end_was_counted_is_handed_back_once_and_not_tracked(tracker) -> None:
    tracker.observe_live([session()], NOW)
    tracker.observe_live([], NOW)
    assert tracker.observe_final(
        session(status="closed", closed_at="2026-05-01T10:04:00Z", close_reason="manual"), NOW
    )
    listing = tracker.begin_listing(NOW)
    fresh = listing.add([session(), session()]) + listing.add([session()])
    listing.complete()
    assert [s["session_id"] for s in fresh] == ["s-1"]
    assert tracker.stats().live == 0
