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
from operator import attrgetter

from .labels import FEATURES, OVERDUE_REASONS
from .models import Session


class _Cutoffs(dict[int, datetime]):
    """``base - N minutes`` for each N asked for, computed on first use."""

    def __init__(self, base: datetime) -> None:
        super().__init__()
        self._base = base

    def __missing__(self, minutes: int) -> datetime:
        cutoff = self[minutes] = self._base - timedelta(minutes=minutes)
        return cutoff


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
    """Aggregate live sessions into a snapshot in one pass (plus a bounded heap).

    It runs once per poll over every live session, so the loop does only comparisons and
    additions: each time limit becomes a cutoff computed once (per distinct number of
    minutes), never a datetime sum per session.
    """
    active: dict[str, int] = {}
    request_bytes: dict[str, int] = {}
    response_bytes: dict[str, int] = {}
    with_error: dict[str, int] = {}
    idle: dict[str, int] = {}
    proxies = solve_captchas = file_storage = web_bot_auth = headful = 0
    over_max_duration = over_idle_timeout = 0
    idle_cutoff = taken_at - idle_threshold
    # A session is overdue when created (or last used) before these cutoffs.
    max_duration_cutoffs = _Cutoffs(taken_at - overdue_grace)
    idle_timeout_cutoffs = _Cutoffs(taken_at - overdue_grace)
    labels: dict[str, str] = {}
    live = list(sessions)
    for session in live:
        raw_browser = session.browser_type
        browser = labels.get(raw_browser)
        if browser is None:
            browser = labels[raw_browser] = browser_label(raw_browser)
        active[browser] = active.get(browser, 0) + 1
        # Totals can only be non-negative; a negative number from the API is noise, not data.
        if session.network_request_bytes > 0:
            request_bytes[browser] = request_bytes.get(browser, 0) + session.network_request_bytes
        if session.network_response_bytes > 0:
            response_bytes[browser] = (
                response_bytes.get(browser, 0) + session.network_response_bytes
            )
        if session.error:
            with_error[browser] = with_error.get(browser, 0) + 1
        last_activity = session.last_accessed_at or session.created_at
        if last_activity < idle_cutoff:
            idle[browser] = idle.get(browser, 0) + 1
        proxies += session.proxies
        solve_captchas += bool(session.solve_captchas)
        file_storage += session.use_file_storage
        web_bot_auth += session.web_bot_auth
        headful += not session.headless
        if session.created_at < max_duration_cutoffs[session.max_duration_minutes]:
            over_max_duration += 1
        if last_activity < idle_timeout_cutoffs[session.idle_timeout_minutes]:
            over_idle_timeout += 1
    oldest = heapq.nsmallest(detail_limit, live, key=attrgetter("created_at", "session_id"))
    if oldest:
        oldest_created_at: datetime | None = oldest[0].created_at
    else:
        oldest_created_at = min((s.created_at for s in live), default=None)
    with_feature = {
        "proxies": proxies,
        "solve_captchas": solve_captchas,
        "file_storage": file_storage,
        "web_bot_auth": web_bot_auth,
        "headful": headful,
    }
    overdue = {"max_duration": over_max_duration, "idle_timeout": over_idle_timeout}
    return Snapshot(
        taken_at=taken_at,
        active=active,
        request_bytes=request_bytes,
        response_bytes=response_bytes,
        with_error=with_error,
        idle=idle,
        with_feature={feature: with_feature[feature] for feature in FEATURES},
        overdue={reason: overdue[reason] for reason in OVERDUE_REASONS},
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
