"""Session lifecycle bookkeeping: starts, ends, lifetimes, traffic and browser time, each once.

The API only lists what is live now, so the lifecycle is inferred from successive polls:

- a session that appears and began after the exporter started (``watch_start``) is a start,
  and all of its traffic is new; one that was already running when the exporter started
  counts its traffic from its first observation, so a restart never replays old bytes;
- a session that vanishes from the live list becomes *pending*: how it ended is looked up
  later (history listing or ``GET /sessions/{id}``, see ``resolver``) and counted once, with
  the traffic it did between its last live observation and its final state;
- a session whose end cannot be learned within ``pending_timeout`` (a duration, so that a
  short poll interval does not give up sooner) counts as ended with status and reason
  ``unknown``; one the API no longer knows at all (404) likewise. Either loses the traffic
  and browser time between its last live observation and its real end;
- a session that began and ended between two polls, found in the history listing, counts as
  a start and an end with all its traffic. Only one that began before the poll's time does
  (one dated later, by a skewed or broken clock, waits until it is not), so that the end it
  is remembered by is never forgotten while the session could still count as new: a session
  first seen ended counts as started at most once, whatever its dates.

Traffic is counted against a high-water mark per session, so an API that reports a smaller
total than before can never make a counter go down or count bytes twice.

Browser time (what Notte bills) is counted the same way, against the moment up to which a
session's time was counted: each live observation adds the time since the previous one, the
learned end adds the rest up to ``closed_at``, and time before the exporter started is not
ours to count (a restart adds no spike). A session's total is therefore its duration as far
as it was watched, to within one poll interval when the API's listing lags behind its end.
Idle time is ``closed_at - last_accessed_at`` of each ended session, clipped to the watched
part of its life so that it never exceeds the browser time counted for it.

Memory is bounded: live entries by the live listing itself, pending entries by
``max_pending``, and the ids of counted ends (kept so nothing is counted twice) by age
(``horizon``, longer than any session may live) and by ``max_ended``.

Keyed (``LifecycleMetrics(keyed=True)``, an account of ``--config.file``): every session also
carries the name of the key it is attributed to (``accounts.OTHER_KEY`` when no named key
claims it), and the counters of starts, ends, traffic, browser and idle time carry it as the
label ``key``, so that their sums over ``key`` are the account's totals exactly. A listing
may then *defer* the sessions the tracker has never seen (``LiveListing(defer=True)``):
nothing of them is counted until ``release`` gives each its key, so even a session's start
counts under the key it was attributed to. A session's key may change later (``move``); what
was counted stays where it was, and what comes after counts under the new key. A session
first seen ended (``first_seen_ended``) is counted, start and end at once, under the key
``observe_final`` is given for it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram

from notte_exporter.accounts import OTHER_KEY
from notte_exporter.api.models import (
    END_STATUSES,
    LiveSession,
    Session,
    in_api_utc,
    is_live,
    last_activity,
    lifetime,
)
from notte_exporter.labels import CLOSE_REASONS, CLOSED_STATUSES, UNKNOWN, BoundedLabel
from notte_exporter.labels import close_reason as close_reason_label
from notte_exporter.labels import closed_status as closed_status_label

# Sessions last from seconds (a scrape) to a day (the largest max_duration_minutes, 1440).
SESSION_DURATION_BUCKETS = (
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
    1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
)  # fmt: skip

DEFAULT_HORIZON = timedelta(hours=25)
DEFAULT_MAX_PENDING = 10_000
DEFAULT_MAX_ENDED = 200_000
# Well above the API's own hiccups: a chaos soak with 28% of polls failing still learns ends.
DEFAULT_PENDING_TIMEOUT = timedelta(minutes=15)
PROXY_LABELS = ("true", "false")


class LifecycleMetrics:
    """The lifecycle counters, with every known label set present from start-up.

    ``keyed`` adds the label ``key`` (after the others) to every counter but the duration
    histogram, whose buckets would multiply by the keys; ``add_key`` creates a key's label
    sets, and ``OTHER_KEY``'s exist from the start.
    """

    def __init__(
        self, registry: CollectorRegistry, browser_types: Iterable[str], *, keyed: bool = False
    ) -> None:
        self.keyed = keyed
        self._browser_types = tuple(browser_types)
        key = ["key"] if keyed else []
        self.started = Counter(
            "notte_sessions_started",
            "Sessions that began while the exporter was watching, by browser type.",
            ["browser_type", *key],
            registry=registry,
        )
        self.closed = Counter(
            "notte_sessions_closed",
            "Sessions that ended while the exporter was watching, by browser type, final "
            'status and close reason; close_reason="idle_timeout" means the client never '
            "stopped the session (a leak).",
            ["browser_type", "status", "close_reason", *key],
            registry=registry,
        )
        self.duration = Histogram(
            "notte_session_duration_seconds",
            "Lifetime of the sessions that ended while the exporter was watching.",
            ["browser_type"],
            buckets=SESSION_DURATION_BUCKETS,
            registry=registry,
        )
        self.request_bytes = Counter(
            "notte_network_request_bytes",
            "Bytes of network requests the sessions made while the exporter was watching; "
            'proxy="true" is traffic through built-in proxies, billed per GB.',
            ["browser_type", "proxy", *key],
            registry=registry,
        )
        self.response_bytes = Counter(
            "notte_network_response_bytes",
            "Bytes of network responses the sessions received while the exporter was watching; "
            'proxy="true" is traffic through built-in proxies, billed per GB.',
            ["browser_type", "proxy", *key],
            registry=registry,
        )
        self.browser_seconds = Counter(
            "notte_sessions_browser_seconds",
            "Browser time of the sessions while the exporter was watching (what Notte bills "
            "by): rate() is the number of open browsers.",
            ["browser_type", *key],
            registry=registry,
        )
        self.idle_seconds = Counter(
            "notte_sessions_idle_seconds",
            "Time ended sessions stayed open after their last access (closed_at - "
            'last_accessed_at), billed with nobody using it; close_reason="idle_timeout" is '
            "the waste of leaked sessions.",
            ["browser_type", "close_reason", *key],
            registry=registry,
        )
        for browser in self._browser_types:
            self.duration.labels(browser)
        self.add_key(OTHER_KEY)

    def add_key(self, name: str) -> None:
        """Create every known label set of key ``name`` (of no key, when not keyed)."""
        extra = (name,) if self.keyed else ()
        for browser in self._browser_types:
            self.started.labels(browser, *extra)
            self.browser_seconds.labels(browser, *extra)
            for proxy in PROXY_LABELS:
                self.request_bytes.labels(browser, proxy, *extra)
                self.response_bytes.labels(browser, proxy, *extra)
            for reason in CLOSE_REASONS:
                self.idle_seconds.labels(browser, reason, *extra)
            for status in CLOSED_STATUSES:
                for reason in CLOSE_REASONS:
                    self.closed.labels(browser, status, reason, *extra)


# What a session's amounts are summed by: its browser type's label, or (keyed) that label
# and its key. A plain string when not keyed, so that the per-session work of a listing
# hashes the same string it always did.
_Group = str | tuple[str, str]


def _split(group: _Group) -> tuple[str, tuple[str, ...]]:
    """A group's browser type label and the label values that follow the others (its key)."""
    if isinstance(group, str):
        return group, ()
    return group[0], group[1:]


@dataclass(slots=True)
class _Tracked:
    browser_type: str
    request_hwm: int
    response_hwm: int
    # Browser time is counted from watched_from (its start, or the exporter's if later) up to
    # counted_until; vanished_at is when it left the live listing (pending since then).
    watched_from: datetime
    counted_until: datetime
    group: _Group
    vanished_at: datetime | None = None


@dataclass(frozen=True)
class LifecycleStats:
    live: int
    pending: int
    ended_remembered: int


class LifecycleTracker:
    """Turns successive live listings and end lookups into lifecycle counters."""

    def __init__(
        self,
        metrics: LifecycleMetrics,
        browser_label: BoundedLabel,
        *,
        watch_start: datetime,
        horizon: timedelta = DEFAULT_HORIZON,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_ended: int = DEFAULT_MAX_ENDED,
        pending_timeout: timedelta = DEFAULT_PENDING_TIMEOUT,
    ) -> None:
        self._metrics = metrics
        self._keyed = metrics.keyed
        self._browser = browser_label
        # In the API's UTC instance: compared with a timestamp of every session first seen.
        self._watch_start = in_api_utc(watch_start)
        self._horizon = horizon
        self._max_pending = max_pending
        self._max_ended = max_ended
        self._pending_timeout = pending_timeout
        self._live: dict[str, _Tracked] = {}
        self._pending: OrderedDict[str, _Tracked] = OrderedDict()
        # id -> when its end was counted; insertion order is counting order.
        self._ended: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def observe_live(self, sessions: Iterable[LiveSession], now: datetime) -> None:
        """Record one complete live listing at once (see ``LiveListing``)."""
        listing = self.begin_listing(now)
        listing.add(sessions)
        listing.complete()

    def begin_listing(
        self, now: datetime, *, defer: bool = False, keys: Mapping[str, str] | None = None
    ) -> LiveListing:
        """Start reading a live listing taken at ``now``, to be fed page by page;
        ``defer``: hold the sessions never seen before until ``LiveListing.release``, but
        those ``keys`` already attributes (by id), which are observed at once under it."""
        return LiveListing(self, now, defer=defer, keys=keys)

    @property
    def keyed(self) -> bool:
        """Whether sessions carry the key they are attributed to (``LifecycleMetrics``)."""
        return self._keyed

    def add_key(self, name: str) -> None:
        """A named key sessions may be attributed to: its series exist from now on."""
        self._metrics.add_key(name)

    def pending_ids(self) -> list[str]:
        """Sessions whose end is still to be learned, longest-vanished first."""
        with self._lock:
            return list(self._pending)

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def first_seen_ended(self, session: Session, now: datetime) -> bool:
        """Whether ``observe_final`` would count this session's start as well as its end:
        it is ended, never seen before, and began while watched (between two polls)."""
        if is_live(session):
            return False
        with self._lock:
            sid = session["session_id"]
            if sid in self._ended or sid in self._live or sid in self._pending:
                return False
        return self._began_while_watched(session, now)

    def observe_final(self, session: Session, now: datetime, *, key: str = OTHER_KEY) -> bool:
        """Record a session seen in a final state; returns True if this counted an end.
        ``key``: the key a session first seen ended is attributed to (a known session keeps
        its own)."""
        if is_live(session):
            return False
        # Worked out before anything is counted or forgotten, so that an end counts whole or
        # not at all: a start counted without the end remembered would count at every poll.
        lived = lifetime(session)
        ended_at = session["closed_at"]
        if ended_at is None and lived is not None:
            ended_at = session["created_at"] + lived
        with self._lock:
            sid = session["session_id"]
            if sid in self._ended or sid in self._live:
                return False
            tracked = self._pending.pop(sid, None)
            if tracked is None:
                if not self._began_while_watched(session, now):
                    return False
                # Began and ended between two polls: a start and an end, all traffic new.
                tracked = self._first_sight(session, key)
            sent_now: _Traffic = {}
            received_now: _Traffic = {}
            _add_traffic(tracked, session, sent_now, received_now)
            self._count_traffic(sent_now, received_now)
            reason = close_reason_label(session["close_reason"])
            if ended_at is not None:
                self._count_time(tracked, ended_at)
                idle_from = max(last_activity(session), tracked.watched_from)
                if ended_at > idle_from:
                    browser, labels = _split(tracked.group)
                    self._metrics.idle_seconds.labels(browser, reason, *labels).inc(
                        (ended_at - idle_from).total_seconds()
                    )
            self._count_end(
                sid,
                tracked,
                status=closed_status_label(session["status"]),
                reason=reason,
                now=now,
            )
            if lived is not None:
                self._metrics.duration.labels(browser_type=tracked.browser_type).observe(
                    lived.total_seconds()
                )
            return True

    def observe_unknown(self, session_id: str, now: datetime) -> None:
        """The API no longer knows a pending session: it ended, nobody can say how."""
        with self._lock:
            if session_id in self._pending:
                self._give_up(session_id, now)

    def stats(self) -> LifecycleStats:
        with self._lock:
            return LifecycleStats(len(self._live), len(self._pending), len(self._ended))

    def _first_sight(self, session: LiveSession, key: str = OTHER_KEY) -> _Tracked:
        browser = self._browser(session["browser_type"])
        group: _Group = (browser, key) if self._keyed else browser
        created_at = session["created_at"]
        if created_at >= self._watch_start:
            self._metrics.started.labels(browser, *_split(group)[1]).inc()
            return _Tracked(browser, 0, 0, created_at, created_at, group)
        # Running before the exporter started: its traffic and time so far were never ours
        # to count.
        return _Tracked(
            browser,
            session["network_request_bytes"],
            session["network_response_bytes"],
            self._watch_start,
            self._watch_start,
            group,
        )

    def _began_while_watched(self, session: Session, now: datetime) -> bool:
        return max(self._watch_start, now - self._horizon) <= session["created_at"] <= now

    def _count_traffic(self, sent: _Traffic, received: _Traffic) -> None:
        for (group, proxy), amount in sent.items():
            browser, key = _split(group)
            self._metrics.request_bytes.labels(browser, proxy, *key).inc(amount)
        for (group, proxy), amount in received.items():
            browser, key = _split(group)
            self._metrics.response_bytes.labels(browser, proxy, *key).inc(amount)

    def _count_time(self, tracked: _Tracked, until: datetime) -> None:
        """Add the browser time up to ``until`` not counted yet; never negative, never twice."""
        if until > tracked.counted_until:
            browser, key = _split(tracked.group)
            self._metrics.browser_seconds.labels(browser, *key).inc(
                (until - tracked.counted_until).total_seconds()
            )
            tracked.counted_until = until

    def _count_end(
        self, sid: str, tracked: _Tracked, *, status: str, reason: str, now: datetime
    ) -> None:
        browser, key = _split(tracked.group)
        self._metrics.closed.labels(browser, status, reason, *key).inc()
        self._ended[sid] = now
        while len(self._ended) > self._max_ended:
            self._ended.popitem(last=False)

    def _age_pending(self, now: datetime) -> None:
        """Give up on ends still unknown after ``pending_timeout``, or beyond the bound."""
        cutoff = now - self._pending_timeout
        expired = [
            sid
            for sid, tracked in self._pending.items()
            if tracked.vanished_at is not None and tracked.vanished_at < cutoff
        ]
        for sid in expired:
            self._give_up(sid, now)
        while len(self._pending) > self._max_pending:
            self._give_up(next(iter(self._pending)), now)

    def _give_up(self, sid: str, now: datetime) -> None:
        tracked = self._pending.pop(sid)
        self._count_end(sid, tracked, status=UNKNOWN, reason=UNKNOWN, now=now)

    def _forget_old_ends(self, now: datetime) -> None:
        """Drop ids counted longer ago than any session lives: they cannot come back as new."""
        cutoff = now - self._horizon
        while self._ended:
            sid, counted_at = next(iter(self._ended.items()))
            if counted_at >= cutoff:
                break
            del self._ended[sid]


class LiveListing:
    """One live listing, observed page by page as it is read, so no page need be kept.

    What a page shows is true whether or not the rest of the listing arrives: a session
    seen live has started, its traffic and browser time up to the listing's ``now`` have
    happened. So each page updates the tracked sessions as it is read (their high-water
    marks with it), and the amounts are counted when the listing ends either way. Only who
    *vanished* needs the whole listing: ``complete()`` moves every session the listing did
    not show to pending, ``abandon()`` (the listing failed part way) keeps them live, as if
    this poll had not happened for them.

    A session listed twice (the list shifted while it was paged) is one session: its first
    sighting counts, and whatever a later one shows beyond it is counted at the next poll.

    With ``defer``, a session the tracker has never seen is held, not observed, until
    ``release`` says which key it is attributed to (its first sighting is the one held). A
    listing that is abandoned drops what it held: the next listing shows those sessions as
    new again, so nothing of theirs is lost (their traffic and time count from their start).
    """

    def __init__(
        self,
        tracker: LifecycleTracker,
        now: datetime,
        *,
        defer: bool = False,
        keys: Mapping[str, str] | None = None,
    ) -> None:
        self._tracker = tracker
        # Sessions never seen before, by id, held until release (None: observed at once).
        self._deferred: dict[str, LiveSession] | None = {} if defer else None
        # Keys known before the listing (the named keys listed first): no need to hold those.
        self._keys: Mapping[str, str] = keys or {}
        # In the API's UTC instance, like the sessions' timestamps (cheap to compare).
        self._now = in_api_utc(now)
        # Every session of the listing, by id: the live entries once it is whole.
        self._seen: dict[str, _Tracked] = {}
        # Sessions listed although their end was counted (a stale listing): nothing to
        # learn from them, but the snapshot counts them once like any live session.
        # By id, the raw browser type of each: the snapshot counts them under OTHER_KEY.
        self._stale: dict[str, str] = {}
        self._seconds: dict[_Group, float] = {}
        self._sent: _Traffic = {}
        self._received: _Traffic = {}

    def add(self, sessions: Iterable[LiveSession]) -> list[LiveSession]:
        """Observe a page; returns its live sessions not already seen in this listing.

        One Python loop per session per poll, so it does only lookups, comparisons and
        additions; amounts are summed per label set and counted once per listing (one
        counter update per session would cost more than the rest of the bookkeeping). A
        session whose traffic did not grow (idle ones, the leaks) costs no call at all.
        """
        tracker = self._tracker
        now = self._now
        seen = self._seen
        seconds = self._seconds
        sent, received = self._sent, self._received
        ends = END_STATUSES
        deferred = self._deferred
        fresh: list[LiveSession] = []
        with tracker._lock:
            previous = tracker._live
            ended = tracker._ended
            pending = tracker._pending
            for session in sessions:
                sid = session["session_id"]
                # models.is_live, inlined: a call per session is a measurable share of a poll.
                if sid in seen or session["closed_at"] is not None or session["status"] in ends:
                    continue
                if sid in ended:
                    if sid not in self._stale:
                        self._stale[sid] = session["browser_type"]
                        fresh.append(session)
                    continue
                tracked = previous.get(sid) or pending.pop(sid, None)
                if tracked is None:
                    key = self._keys.get(sid)
                    if key is not None:
                        tracked = tracker._first_sight(session, key)
                    elif deferred is not None:
                        deferred.setdefault(sid, session)
                        continue
                    else:
                        tracked = tracker._first_sight(session)
                else:
                    tracked.vanished_at = None
                fresh.append(session)
                if (
                    session["network_request_bytes"] > tracked.request_hwm
                    or session["network_response_bytes"] > tracked.response_hwm
                ):
                    _add_traffic(tracked, session, sent, received)
                if now > tracked.counted_until:
                    group = tracked.group
                    seconds[group] = seconds.get(group, 0.0) + (
                        (now - tracked.counted_until).total_seconds()
                    )
                    tracked.counted_until = now
                seen[sid] = tracked
        return fresh

    def deferred_ids(self) -> list[str]:
        """The sessions held until ``release``, in the order they were first listed."""
        return list(self._deferred or ())

    def release(self, keys: Mapping[str, str]) -> list[LiveSession]:
        """Observe the held sessions, each under the key ``keys`` gives it (``OTHER_KEY``
        when none); returns them, for the snapshot and the reaper to see."""
        held = self._deferred or {}
        self._deferred = {} if self._deferred is not None else None
        tracker = self._tracker
        with tracker._lock:
            for sid, session in held.items():
                tracked = tracker._first_sight(session, keys.get(sid, OTHER_KEY))
                _add_traffic(tracked, session, self._sent, self._received)
                if self._now > tracked.counted_until:
                    self._seconds[tracked.group] = self._seconds.get(tracked.group, 0.0) + (
                        (self._now - tracked.counted_until).total_seconds()
                    )
                    tracked.counted_until = self._now
                self._seen[sid] = tracked
        return list(held.values())

    def shows(self, session_id: str) -> bool:
        """Whether this listing showed the session live (held ones not yet)."""
        return session_id in self._seen

    def move(self, keys: Mapping[str, str]) -> None:
        """Attribute sessions of this listing to another key from now on: what was counted
        up to this listing, this listing's own amounts included, stays under the key it had;
        what later ones add counts under the new key."""
        if not self._tracker._keyed:
            return
        with self._tracker._lock:
            for sid, key in keys.items():
                tracked = self._seen.get(sid)
                if tracked is not None:
                    tracked.group = (tracked.browser_type, key)

    def active_by_key(self) -> dict[tuple[str, str], int]:
        """Live sessions of this listing by (browser type label, key); those listed although
        their end was counted have no key left: ``OTHER_KEY``."""
        counts: dict[tuple[str, str], int] = {}
        for tracked in self._seen.values():
            group = tracked.group
            pair = (group, OTHER_KEY) if isinstance(group, str) else group
            counts[pair] = counts.get(pair, 0) + 1
        for browser_type in self._stale.values():
            pair = (self._tracker._browser(browser_type), OTHER_KEY)
            counts[pair] = counts.get(pair, 0) + 1
        return counts

    def complete(self) -> None:
        """The listing is whole: sessions it did not show have vanished (pending)."""
        tracker = self._tracker
        with tracker._lock:
            self._count()
            seen = self._seen
            pending = tracker._pending
            for sid, tracked in tracker._live.items():
                if sid not in seen:
                    tracked.vanished_at = self._now
                    pending[sid] = tracked
            tracker._live = seen
            tracker._age_pending(self._now)
            tracker._forget_old_ends(self._now)

    def abandon(self) -> None:
        """The listing failed part way: count what it showed, conclude nothing from gaps."""
        tracker = self._tracker
        with tracker._lock:
            self._count()
            tracker._live.update(self._seen)

    def _count(self) -> None:
        metrics = self._tracker._metrics
        for group, amount in self._seconds.items():
            browser, key = _split(group)
            metrics.browser_seconds.labels(browser, *key).inc(amount)
        self._tracker._count_traffic(self._sent, self._received)
        self._seconds, self._sent, self._received = {}, {}, {}


# Bytes to add per (group, proxy) label set.
_Traffic = dict[tuple[_Group, str], int]


def _add_traffic(
    tracked: _Tracked, session: LiveSession, sent: _Traffic, received: _Traffic
) -> None:
    """Add the bytes past the session's high-water marks to ``sent`` and ``received``."""
    # A session's proxies setting is fixed at start; the latest answer is the best one.
    proxy = _proxy_label(session)
    value = session["network_request_bytes"]
    if value > tracked.request_hwm:
        key = (tracked.group, proxy)
        sent[key] = sent.get(key, 0) + value - tracked.request_hwm
        tracked.request_hwm = value
    value = session["network_response_bytes"]
    if value > tracked.response_hwm:
        key = (tracked.group, proxy)
        received[key] = received.get(key, 0) + value - tracked.response_hwm
        tracked.response_hwm = value


def _proxy_label(session: LiveSession) -> str:
    return "true" if session["proxies"] else "false"
