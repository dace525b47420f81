"""The immutable result of one successful poll, summarised for rendering.

A poll turns the live sessions into a ``Snapshot`` once; every scrape then only renders
numbers that are already computed, so scrapes stay cheap and never disagree with each other
about what "now" was. All time-based judgements (idle, overdue) use the poll's own time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import TypeVar

from notte_exporter.api.models import LiveSession
from notte_exporter.api.models import last_activity as last_activity_of
from notte_exporter.labels import FEATURES, OVERDUE_REASONS, text_label


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
    """What is exposed about one of the oldest live sessions, so alerts can name it; its
    texts are label values already (``session_id`` redacted and cut: ``labels.text_label``),
    shown as they are on ``/metrics`` and the status page."""

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
    # Keyed (an account of --config.file): live sessions by (browser type label, key), and
    # every key known, each to be shown even at 0. None when not keyed.
    active_by_key: dict[tuple[str, str], int] | None = None
    keys: tuple[str, ...] = ()

    @property
    def total_active(self) -> int:
        return sum(self.active.values())


class SnapshotBuilder:
    """A snapshot under way: live sessions are added a page at a time, each once.

    A poll adds each page as it reads it and keeps none, so it never holds its 10,000
    sessions at once (memory) and reads each while it is still in the CPU's cache. It runs
    once per poll over every live session (10,000 cost a few ms), so the loop does only
    lookups, comparisons and additions, and counts per raw browser type (mapped to labels
    once, in ``snapshot``): each time limit becomes a cutoff computed once per distinct
    number of minutes, never a datetime sum per session. Counts that need no comparison
    (sessions per browser type, features) are one ``Counter`` pass in C over each session's
    *kind* (its browser type and feature flags: a few dozen distinct kinds at most), split
    into browser types and features once, in ``snapshot``; one pass over a tuple of six
    costs a third less than six passes over one field. ``taken_at`` should be in
    ``models.API_UTC`` (see ``models``), so that comparing it with the API's timestamps is
    cheap.
    """

    def __init__(
        self,
        *,
        taken_at: datetime,
        idle_threshold: timedelta,
        overdue_grace: timedelta,
        detail_limit: int,
    ) -> None:
        self._taken_at = taken_at
        self._idle_cutoff = taken_at - idle_threshold
        # A session is overdue when created (or last used) more than its limit (in minutes)
        # plus the grace before the poll: both limits count from the same cutoffs.
        self._overdue_cutoffs = _Cutoffs(taken_at - overdue_grace)
        self._detail_limit = detail_limit
        self._kinds: Counter[_Kind] = Counter()
        self._request_bytes: dict[str, int] = {}
        self._response_bytes: dict[str, int] = {}
        self._with_error: dict[str, int] = {}
        self._idle: dict[str, int] = {}
        self._overdue = {"max_duration": 0, "idle_timeout": 0}
        self._oldest: list[LiveSession] = []
        self._oldest_created_at: datetime | None = None

    def add(self, live: Sequence[LiveSession]) -> None:
        """Count ``live``: sessions not added before (the caller removes duplicates)."""
        request_bytes = self._request_bytes
        response_bytes = self._response_bytes
        with_error = self._with_error
        idle = self._idle
        idle_cutoff = self._idle_cutoff
        overdue_cutoffs = self._overdue_cutoffs
        over_max_duration = over_idle_timeout = 0
        for session in live:
            browser = session["browser_type"]
            # Totals are never negative (models.Count); idle sessions add nothing.
            sent = session["network_request_bytes"]
            if sent:
                request_bytes[browser] = request_bytes.get(browser, 0) + sent
            received = session["network_response_bytes"]
            if received:
                response_bytes[browser] = response_bytes.get(browser, 0) + received
            if session["error"]:
                with_error[browser] = with_error.get(browser, 0) + 1
            last_activity = session["last_accessed_at"] or session["created_at"]
            if last_activity < idle_cutoff:
                idle[browser] = idle.get(browser, 0) + 1
            if session["created_at"] < overdue_cutoffs[session["max_duration_minutes"]]:
                over_max_duration += 1
            if last_activity < overdue_cutoffs[session["idle_timeout_minutes"]]:
                over_idle_timeout += 1
        self._overdue["max_duration"] += over_max_duration
        self._overdue["idle_timeout"] += over_idle_timeout
        self._kinds.update(map(_KIND, live))  # in C, outside the loop
        if self._detail_limit > 0:
            # A sort of the page with the oldest kept so far, in C. Listings are newest
            # first, so a page read backwards is already in order and the sort is one pass
            # (a heap costs more: its loop over the page runs in Python).
            self._oldest = sorted(chain(reversed(live), self._oldest), key=_AGE_KEY)[
                : self._detail_limit
            ]
        elif live:
            oldest = min(map(_CREATED_AT, live))
            if self._oldest_created_at is None or oldest < self._oldest_created_at:
                self._oldest_created_at = oldest

    def snapshot(
        self,
        *,
        browser_label: Callable[[str], str],
        status_label: Callable[[str], str],
        redact: Callable[[str], str] = str,
        active_by_key: dict[tuple[str, str], int] | None = None,
        keys: tuple[str, ...] = (),
    ) -> Snapshot:
        """The snapshot of every session added, with raw values mapped to labels and ids
        passed through ``redact`` (the one redaction step) and cut; ``active_by_key`` and
        ``keys`` are the tracker's, when keyed (sessions carry no key of their own)."""
        oldest = self._oldest
        return Snapshot(
            taken_at=self._taken_at,
            active=_by_label(self._kinds, lambda kind: browser_label(kind[0])),
            request_bytes=_by_label(self._request_bytes, browser_label),
            response_bytes=_by_label(self._response_bytes, browser_label),
            with_error=_by_label(self._with_error, browser_label),
            idle=_by_label(self._idle, browser_label),
            with_feature=_per_feature(self._kinds),
            overdue={reason: self._overdue[reason] for reason in OVERDUE_REASONS},
            oldest_created_at=oldest[0]["created_at"] if oldest else self._oldest_created_at,
            oldest=tuple(
                SessionDetail(
                    session_id=text_label(s["session_id"], redact),
                    browser_type=browser_label(s["browser_type"]),
                    status=status_label(s["status"]),
                    created_at=s["created_at"],
                    last_accessed_at=last_activity_of(s),
                )
                for s in oldest
            ),
            active_by_key=active_by_key,
            keys=keys,
        )


_Raw = TypeVar("_Raw")

_AGE_KEY = itemgetter("created_at", "session_id")
_CREATED_AT = itemgetter("created_at")

# What ``snapshot`` needs of a session beyond comparisons: its browser type and features.
_Kind = tuple[str, bool, bool | None, bool, bool, bool]
_KIND = itemgetter(
    "browser_type", "proxies", "solve_captchas", "use_file_storage", "web_bot_auth", "headless"
)


def _per_feature(kinds: Counter[_Kind]) -> dict[str, int]:
    """Sessions with each feature on; ``solve_captchas`` may be None (unknown: not on)."""
    with_feature = dict.fromkeys(FEATURES, 0)
    for (_, proxies, solve_captchas, file_storage, web_bot_auth, headless), count in kinds.items():
        with_feature["proxies"] += count if proxies else 0
        with_feature["solve_captchas"] += count if solve_captchas is True else 0
        with_feature["file_storage"] += count if file_storage else 0
        with_feature["web_bot_auth"] += count if web_bot_auth else 0
        with_feature["headful"] += 0 if headless else count
    return with_feature


def _by_label(counts: Mapping[_Raw, int], label: Callable[[_Raw], str]) -> dict[str, int]:
    """Counts per raw value (a browser type, a session's kind), summed per label value
    (several raw values may share one)."""
    labelled: dict[str, int] = {}
    for raw, count in counts.items():
        name = label(raw)
        labelled[name] = labelled.get(name, 0) + count
    return labelled
