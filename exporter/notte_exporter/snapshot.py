"""The immutable result of one successful poll, summarised for rendering.

A poll turns the live sessions into a ``Snapshot`` once; every scrape then only renders
numbers that are already computed, so scrapes stay cheap and never disagree with each other
about what "now" was. All time-based judgements (idle, overdue) use the poll's own time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .labels import FEATURES, OVERDUE_REASONS
from .models import Session


@dataclass(frozen=True)
class SessionDetail:
    """What is exposed about one of the oldest live sessions, so alerts can name it."""

    session_id: str
    browser_type: str
    status: str
    created_at: datetime
    last_accessed_at: datetime


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    active: dict[str, int]
    request_bytes: dict[str, int]
    response_bytes: dict[str, int]
    with_error: dict[str, int]
    idle: dict[str, int]
    with_feature: dict[str, int]
    overdue: dict[str, int]
    oldest_created_at: datetime | None
    oldest: tuple[SessionDetail, ...] = field(default=())

    @property
    def total_active(self) -> int:
        return sum(self.active.values())


def summarise(
    sessions: Iterable[Session],
    *,
    taken_at: datetime,
    browser_label: Callable[[str], str],
    status_label: Callable[[str], str],
    idle_threshold: timedelta,
    overdue_grace: timedelta,
    detail_limit: int,
) -> Snapshot:
    """Aggregate live sessions into a snapshot in one pass (plus a bounded heap)."""
    active: dict[str, int] = {}
    request_bytes: dict[str, int] = {}
    response_bytes: dict[str, int] = {}
    with_error: dict[str, int] = {}
    idle: dict[str, int] = {}
    with_feature = dict.fromkeys(FEATURES, 0)
    overdue = dict.fromkeys(OVERDUE_REASONS, 0)
    oldest_created_at: datetime | None = None
    live = []
    for session in sessions:
        live.append(session)
        browser = browser_label(session.browser_type)
        active[browser] = active.get(browser, 0) + 1
        # Totals can only be non-negative; a negative number from the API is noise, not data.
        request_bytes[browser] = request_bytes.get(browser, 0) + max(
            session.network_request_bytes, 0
        )
        response_bytes[browser] = response_bytes.get(browser, 0) + max(
            session.network_response_bytes, 0
        )
        if session.error:
            with_error[browser] = with_error.get(browser, 0) + 1
        if taken_at - session.last_activity > idle_threshold:
            idle[browser] = idle.get(browser, 0) + 1
        for feature, used in (
            ("proxies", session.proxies),
            ("solve_captchas", bool(session.solve_captchas)),
            ("file_storage", session.use_file_storage),
            ("web_bot_auth", session.web_bot_auth),
            ("headful", not session.headless),
        ):
            with_feature[feature] += used
        deadline = session.created_at + timedelta(minutes=session.max_duration_minutes)
        if taken_at > deadline + overdue_grace:
            overdue["max_duration"] += 1
        idle_deadline = session.last_activity + timedelta(minutes=session.idle_timeout_minutes)
        if taken_at > idle_deadline + overdue_grace:
            overdue["idle_timeout"] += 1
        if oldest_created_at is None or session.created_at < oldest_created_at:
            oldest_created_at = session.created_at
    oldest = heapq.nsmallest(detail_limit, live, key=lambda s: (s.created_at, s.session_id))
    return Snapshot(
        taken_at=taken_at,
        active=active,
        request_bytes=request_bytes,
        response_bytes=response_bytes,
        with_error=with_error,
        idle=idle,
        with_feature=with_feature,
        overdue=overdue,
        oldest_created_at=oldest_created_at,
        oldest=tuple(
            SessionDetail(
                session_id=s.session_id,
                browser_type=browser_label(s.browser_type),
                status=status_label(s.status),
                created_at=s.created_at,
                last_accessed_at=s.last_activity,
            )
            for s in oldest
        ),
    )
