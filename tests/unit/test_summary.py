"""The snapshot a poll takes, built a page at a time: the same whatever the pages are."""

import random
from datetime import timedelta

import pytest

from notte_exporter.api.models import Session, in_api_utc
from notte_exporter.labels import BROWSER_TYPES, BoundedLabel
from notte_exporter.polling.snapshot import Snapshot, SnapshotBuilder
from support import at, parse_one

NOW = in_api_utc(at("2026-05-01T10:30:00"))
LIMITS = {"idle_threshold": timedelta(seconds=60), "overdue_grace": timedelta(seconds=60)}
LABELS = {"browser_label": BoundedLabel(BROWSER_TYPES), "status_label": BoundedLabel(())}


def fleet(size: int, seed: int = 7) -> list[Session]:
    """Newest first, as the API lists them, with every field the snapshot reads varied."""
    rng = random.Random(seed)
    sessions = []
    for index in range(size):
        created = NOW - timedelta(seconds=30 * index + rng.randint(0, 29))
        sessions.append(
            parse_one(
                f"s-{index:03d}",
                created_at=created.isoformat(),
                last_accessed_at=(created + timedelta(seconds=rng.randint(0, 60))).isoformat(),
                browser_type=rng.choice(["chromium", "firefox", "chrome-nightly"]),
                idle_timeout_minutes=rng.choice([3, 10]),
                max_duration_minutes=rng.choice([5, 15, 60]),
                network_request_bytes=rng.choice([0, 1, rng.randint(2, 10**6)]),
                network_response_bytes=rng.randint(0, 10**9),
                error=rng.choice([None, "", "net::ERR_TIMED_OUT"]),
                proxies=rng.random() < 0.3,
                solve_captchas=rng.choice([True, False, None]),
                use_file_storage=rng.random() < 0.2,
                web_bot_auth=rng.random() < 0.1,
                headless=rng.random() < 0.8,
            )
        )
    return sessions


def by_pages(sessions: list[Session], size: int, detail_limit: int) -> Snapshot:
    summary = SnapshotBuilder(taken_at=NOW, detail_limit=detail_limit, **LIMITS)
    for start in range(0, len(sessions), size):
        summary.add(sessions[start : start + size])
    return summary.snapshot(**LABELS)


@pytest.mark.parametrize("detail_limit", [0, 1, 5])
@pytest.mark.parametrize("page_size", [1, 7, 100])
def test_a_snapshot_added_page_by_page_equals_the_snapshot_of_all(
    page_size: int, detail_limit: int
) -> None:
    sessions = fleet(60)
    whole = by_pages(sessions, len(sessions), detail_limit)  # one page: all of them at once
    assert by_pages(sessions, page_size, detail_limit) == whole


def test_the_oldest_are_found_wherever_the_pages_put_them() -> None:
    sessions = fleet(40)
    shuffled = sessions[:]
    random.Random(3).shuffle(shuffled)
    oldest = [detail.session_id for detail in by_pages(shuffled, 6, 4).oldest]
    assert oldest == ["s-039", "s-038", "s-037", "s-036"]


def test_a_snapshot_of_no_session_has_no_oldest() -> None:
    snapshot = by_pages([], 10, 5)
    assert snapshot.oldest == ()
    assert snapshot.oldest_created_at is None
    assert snapshot.total_active == 0
