"""One poll: list the live sessions, learn how vanished ones ended, publish a snapshot.

A poll succeeds only when every page of the live listing arrived; anything less would
publish a partial picture as if it were whole (the counters still count what the pages it
did read show, and conclude no end from the pages it did not: ``lifecycle.LiveListing``).
Learning how sessions ended is best effort
within ``lookup_budget`` requests: it never fails a poll, and whatever it cannot learn now
is tried again on the next poll (see ``lifecycle``). Every end not learned costs the
counters its last bytes and browser seconds, so lookups by id are retried (within the
poll's time budget) and one failed lookup does not abandon the others.

With ``attribution`` (an account with named keys, see ``attribution``), the sessions the
listing shows for the first time are held until it is whole, then attributed to a key and
only then handed to the tracker, the snapshot and the reaper; a key that fails never fails
the poll. Likewise the sessions learning ends meets for the first time, already ended (they
began and ended between two polls): they are held until the end of the lookups, attributed
from the named keys' recent history, and only then counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any, ParamSpec, Protocol, TypeVar

from notte_exporter.accounts import OTHER_KEY
from notte_exporter.api.client import Answer, NotteClient
from notte_exporter.api.models import (
    InvalidItem,
    LiveSession,
    Session,
    SessionPage,
    in_api_utc,
    is_live,
)
from notte_exporter.api.paging import pages_ahead, read_listing
from notte_exporter.errors import ApiError, ShutdownRequested, unexpected
from notte_exporter.instrumentation import ExporterMetrics
from notte_exporter.labels import BoundedLabel, text_label
from notte_exporter.polling.attribution import Attribution
from notte_exporter.polling.lifecycle import LifecycleTracker, LiveListing
from notte_exporter.polling.poll_log import PollLog
from notte_exporter.polling.snapshot import SnapshotBuilder
from notte_exporter.polling.state import ExporterState, PollStatus

log = logging.getLogger(__name__)


class Sighting(Protocol):
    """What watches one poll's live listing: each page's sessions as they are read, and the
    end of a whole listing (only a successful poll reaches it)."""

    def add(self, sessions: Iterable[LiveSession]) -> None: ...

    def complete(self, deadline: float) -> None: ...


class ListingWatcher(Protocol):
    """What a poll hands its live sessions to (the reaper), without an extra listing.

    Declared here, where it is used, so that the poller needs nothing of what implements it.
    """

    def begin(self, now: datetime) -> Sighting: ...

    def requests_per_poll(self) -> int: ...


@dataclass(frozen=True)
class PollConfig:
    page_size: int = 100
    max_pages: int = 50
    concurrency: int = 4
    only_current_token: bool = False
    poll_timeout: float = 24.0
    lookup_budget: int = 10
    idle_threshold: timedelta = timedelta(seconds=60)
    overdue_grace: timedelta = timedelta(seconds=60)
    detail_limit: int = 20


def utc_now() -> datetime:
    return datetime.now(UTC)


_P = ParamSpec("_P")
_T = TypeVar("_T")


class PollThreads(Executor):
    """One poll's share of the poller's threads: what it submits, it finishes.

    ``finish`` cancels what has not started and waits for what has, so that a poll's
    requests are all its own, even when it fails part way, and none is left running into
    the next poll.
    """

    def __init__(self, threads: Executor) -> None:
        self._threads = threads
        # Only those not done: a done one holds its answer, which is the caller's to drop.
        self._unfinished: set[Future[Any]] = set()

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        future = self._threads.submit(fn, *args, **kwargs)
        self._unfinished.add(future)
        future.add_done_callback(self._unfinished.discard)
        return future

    def finish(self) -> None:
        while self._unfinished:  # a request under way may still submit one (the history)
            unfinished = list(self._unfinished)
            for future in unfinished:
                future.cancel()
            wait(unfinished)


class Poller:
    def __init__(
        self,
        client: NotteClient,
        config: PollConfig,
        state: ExporterState,
        tracker: LifecycleTracker,
        metrics: ExporterMetrics,
        browser_label: BoundedLabel,
        status_label: BoundedLabel,
        *,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        reporter: PollLog | None = None,
        thread_cpu: Callable[[], float] = time.thread_time,
        redact: Callable[[str], str] = str,
        reaper: ListingWatcher | None = None,
        attribution: Attribution | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._state = state
        self._tracker = tracker
        self._metrics = metrics
        self._browser_label = browser_label
        self._status_label = status_label
        self._clock = clock
        self._monotonic = monotonic
        # When the last complete live listing began: sessions created later may have started
        # and ended without ever being listed as live.
        self._previous_listing: datetime | None = None
        self._reporter = reporter or PollLog(log, monotonic=monotonic)
        self._pages = 0
        # Pages of the last complete live listing: how many this poll asks for at once.
        self._expected_pages = 1
        self._threads: ThreadPoolExecutor | None = None
        self._threads_lock = threading.Lock()
        # Pages to ask ahead (paging.pages_ahead), from the last whole listing's timings;
        # None until one was timed. A request's wait for the API is its time (monotonic)
        # less the CPU its thread spent on it (thread_cpu).
        self._ahead: int | None = None
        self._thread_cpu = thread_cpu
        # The one redaction step, for the session ids the snapshot turns into label values.
        self._redact = redact
        # Sees each listing's live sessions as they are read, and acts after a whole one.
        self._reaper = reaper
        # Named keys to attribute new sessions to; without any, nothing is deferred.
        self._attribution = attribution if attribution is not None and attribution.names else None
        # The keys of notte_sessions_active when keyed: every named key, then "other".
        self._keys = (*(attribution.names if attribution is not None else ()), OTHER_KEY)
        for name in self._keys[:-1]:
            tracker.add_key(name)

    def poll(self) -> PollStatus:
        """Run one poll and record its outcome; a failure is returned, never raised.

        Whatever goes wrong in the poll, the API, the network or a bug of the exporter's own
        (then reason ``other``), fails this poll only; the next one starts afresh. Only
        ShutdownRequested leaves, and whatever breaks the recording of the outcome itself,
        for the daemon's loop to catch.
        """
        started = self._monotonic()
        deadline = started + self._config.poll_timeout
        requests_before = self._requests_made()
        self._pages = 0
        self._metrics.polls.inc()
        try:
            # The poll's time is when its listing began, taken in the API's UTC instance,
            # cheap to compare with its timestamps (see models). Every judgement of the poll
            # (browser time, idle, overdue, pending) is made against it.
            now = in_api_utc(self._clock())
            sighting = self._reaper.begin(now) if self._reaper is not None else None
            # Leaving the pool waits for whatever it still has in flight, so a poll's
            # requests are all its own, even when it fails.
            with self._page_pool() as pool:
                summary, sessions, history, by_key = self._list_live(deadline, pool, now, sighting)
                self._learn_ends(deadline, now, history)
            snapshot = summary.snapshot(
                browser_label=self._browser_label,
                status_label=self._status_label,
                redact=self._redact,
                active_by_key=by_key,
                keys=self._keys if by_key is not None else (),
            )
            finished_at = self._clock()
        except ApiError as exc:
            return self._fail(exc, started, requests_before)
        except ShutdownRequested:
            raise  # shutdown interrupted a backoff wait: not the API's fault
        except Exception as exc:
            log.debug("unexpected error during poll", exc_info=True)
            return self._fail(unexpected(exc), started, requests_before)
        status = PollStatus(
            ok=True,
            finished_at=finished_at,
            duration_seconds=self._finish(started),
            sessions=sessions,
            pages=self._pages,
            requests=self._requests_made() - requests_before,
            http_status=200,
        )
        self._state.record_success(snapshot, status)
        self._previous_listing = now
        self._reporter.report(status)
        if sighting is not None:
            # Only now: a failed poll's sighting is dropped and decides nothing.
            sighting.complete(deadline)
        return status

    def _fail(self, error: ApiError, started: float, requests_before: int) -> PollStatus:
        # The status first: should making it raise, nothing is counted yet, and the daemon
        # counts the poll's failure once.
        status = PollStatus(
            ok=False,
            finished_at=self._clock(),
            duration_seconds=self._finish(started),
            reason=error.reason,
            message=error.message,
            advice=error.advice,
            pages=self._pages,
            requests=self._requests_made() - requests_before,
            http_status=error.status,
        )
        self._metrics.poll_failures.labels(reason=error.reason.value).inc()
        self._state.record_failure(status)
        self._reporter.report(status)
        return status

    def _requests_made(self) -> int:
        """Requests of the account key and of the named keys, since start."""
        made = self._client.requests_made
        if self._attribution is not None:
            made += self._attribution.requests_made
        return made

    def _finish(self, started: float) -> float:
        duration = max(self._monotonic() - started, 0.0)
        self._metrics.poll_duration.observe(duration)
        return duration

    def close(self) -> None:
        """Let the fetching threads go (those of a poll under way finish its requests)."""
        with self._threads_lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=False, cancel_futures=True)

    @contextmanager
    def _page_pool(self) -> Iterator[Executor | None]:
        """Threads for the poll's requests (``--notte.concurrency``), or None: one at a time.

        One at a time when the API's rate limit would not cover what the poll expects to
        ask: then every request is also spaced out (``NotteClient.paced``).

        The threads outlive the poll: starting and joining them at every poll made a poll
        cost measurably more CPU. What the poll asked of them is still its own: leaving
        cancels what has not started and waits for the rest (``PollThreads``).
        """
        needed = self._expected_pages + self._config.lookup_budget
        if self._reaper is not None:
            needed += self._reaper.requests_per_poll()
        if self._attribution is not None:
            # Whether a named key's requests count against the account's window is
            # unconfirmed (notte-api.md): counted, so that a shared window is never overrun.
            needed += self._attribution.requests_per_poll()
        self._client.paced = not self._client.leaves_room_for(needed)
        if self._client.paced:
            self._metrics.throttled_polls.inc()
            log.info(
                "the API's rate limit leaves fewer than the %d requests this poll expects: "
                "reading pages one at a time, spaced out",
                needed,
            )
        if self._client.paced or self._config.concurrency <= 1 or self._ahead == 0:
            self._metrics.read_ahead.set(0)
            yield None
            return
        self._metrics.read_ahead.set(self._window())
        with self._threads_lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(
                    self._config.concurrency, thread_name_prefix="page"
                )
            threads = self._threads
        poll_threads = PollThreads(threads)
        try:
            yield poll_threads
        finally:
            poll_threads.finish()

    def _window(self) -> int:
        """Pages this poll may ask ahead: as the last listing's timings say, else all."""
        return self._config.concurrency if self._ahead is None else self._ahead

    def _fetch_page(self, page: int, deadline: float, *, live: bool) -> Answer:
        """A page of the live listing (retried) or of the history (best effort: no retry)."""
        return self._client.fetch_sessions(
            page=page,
            page_size=self._config.page_size,
            only_active=live,
            only_current_token=self._config.only_current_token,
            deadline=deadline,
            retries=None if live else 0,
        )

    def _list_live(
        self, deadline: float, pool: Executor | None, now: datetime, sighting: Sighting | None
    ) -> tuple[SnapshotBuilder, int, Future[Answer] | None, dict[tuple[str, str], int] | None]:
        """Every live session, each once, summarised and tracked; or an ApiError.

        Each page is handed to the tracker and the summary as it is read, and dropped: a
        poll never holds its whole listing. The summary is only published if the listing
        is whole, and the tracker concludes who vanished only then (``LiveListing``).
        With named keys, the sessions never seen before are the exception: they are held
        until the listing is whole and their keys are known (``_attribute``). Also, when
        keyed, the live sessions by browser type and key.

        Also the first page of the history, when ``pool`` could fetch it while the listing
        is read: it is asked for once the listing's page 1 has come back (so a rejected key
        or a down API costs no request more) and takes a free place among the listing's
        pages: one round trip less than asking for it afterwards.
        """
        history: list[Future[Answer]] = []
        # What requests waited for the API, and what reading and keeping a page took.
        waits: list[float] = []
        reads: list[float] = []
        keeps: list[float] = []

        def fetch(page: int) -> Answer:
            started, cpu = self._monotonic(), self._thread_cpu()
            result = self._fetch_page(page, deadline, live=True)
            waits.append((self._monotonic() - started) - (self._thread_cpu() - cpu))
            # For the poll's log line; pages may arrive out of order, so the furthest one.
            self._pages = max(self._pages, page)
            if page == 1 and pool is not None and self._config.lookup_budget > 0:
                history.append(pool.submit(self._fetch_page, 1, deadline, live=False))
            return result

        config = self._config
        summary = SnapshotBuilder(
            taken_at=now,
            idle_threshold=config.idle_threshold,
            overdue_grace=config.overdue_grace,
            detail_limit=config.detail_limit,
        )
        listing = self._begin_listing(now, deadline)
        invalid: list[InvalidItem] = []
        sessions = 0

        def read(fetched: Answer, page: int) -> SessionPage[LiveSession]:
            started = self._monotonic()
            result = self._client.read_live_sessions(fetched, page, self._config.page_size)
            reads.append(self._monotonic() - started)
            return result

        def keep(page: SessionPage[LiveSession]) -> None:
            nonlocal sessions
            started = self._monotonic()
            invalid.extend(page.invalid)
            # The list can shift while it is paged: a session seen twice is one session.
            fresh = listing.add(page.sessions)
            summary.add(fresh)
            if sighting is not None:
                sighting.add(fresh)
            sessions += len(fresh)
            keeps.append(self._monotonic() - started)

        try:
            pages = read_listing(
                fetch,
                read,
                keep,
                pool=pool,
                window=self._window(),
                expected=self._expected_pages,
                max_pages=config.max_pages,
                page_size=config.page_size,
            )
            if self._attribution is not None:
                fresh = self._attribute(self._attribution, listing, deadline)
                summary.add(fresh)
                if sighting is not None:
                    sighting.add(fresh)
                sessions += len(fresh)
        except BaseException:
            listing.abandon()
            raise
        listing.complete()
        if waits and reads and keeps:
            read_time = median(reads) + median(keeps)
            self._ahead = pages_ahead(median(waits), read_time, config.concurrency)
        self._report_invalid(invalid)
        self._pages = self._expected_pages = pages
        by_key = listing.active_by_key() if self._tracker.keyed else None
        return summary, sessions, (history[0] if history else None), by_key

    def _begin_listing(self, now: datetime, deadline: float) -> LiveListing:
        """The tracker's listing for this poll; with named keys, those never listed are
        listed first (at the first poll: every one), so that their sessions need no holding.
        Within half of what is left of the poll's budget: a key that hangs leaves the
        account's own listing the other half, and what it could not list is held as usual."""
        if self._attribution is None:
            return self._tracker.begin_listing(now)
        started = self._monotonic()
        keys = self._attribution.list_unlisted(
            started + max(deadline - started, 0.0) / 2,
            page_size=self._config.page_size,
            max_pages=self._config.max_pages,
        )
        return self._tracker.begin_listing(now, defer=True, keys=keys)

    def _attribute(
        self, attribution: Attribution, listing: LiveListing, deadline: float
    ) -> list[LiveSession]:
        """Attribute the sessions the whole listing held back, and hand them to the tracker
        under their keys; returns them. Sessions a key that works again claims move to it."""
        claims = attribution.claim(
            listing.deferred_ids(),
            listing.shows,
            deadline,
            page_size=self._config.page_size,
            max_pages=self._config.max_pages,
        )
        listing.move(claims.moved)
        return listing.release(claims.new)

    def _report_invalid(self, invalid: list[InvalidItem]) -> None:
        if not invalid:
            return
        self._metrics.invalid_sessions.inc(len(invalid))
        first = invalid[0]
        # The id is the API's text: bounded like a label value, so a megabyte id cannot
        # make a megabyte log line.
        log.warning(
            "skipped %d unreadable session item(s); first: session_id=%s %s",
            len(invalid),
            text_label(first.session_id, self._redact) if first.session_id else "?",
            first.problem,
        )

    def _learn_ends(self, deadline: float, now: datetime, first: Future[Answer] | None) -> None:
        """Spend at most ``lookup_budget`` pages and lookups learning how sessions ended.

        A lookup by id is retried on transient failures within the poll's deadline, so in a
        bad moment one lookup can cost up to ``--notte.retries`` more requests.
        """
        budget = self._config.lookup_budget
        if budget <= 0:
            return
        # With named keys: the sessions first seen ended, by id, until their keys are known.
        held: dict[str, Session] = {}
        try:
            budget -= self._scan_history(deadline, now, budget, first, held)
        except ApiError as exc:
            # Not a poll failure: the live picture is complete. Lookups by id still run;
            # the failed page counts as one request spent.
            log.info("could not scan the session history: %s", exc)
            budget -= 1
        failed: list[ApiError] = []
        for session_id in self._tracker.pending_ids()[: max(budget, 0)]:
            if self._monotonic() >= deadline:
                break  # the poll's time budget is spent; the rest waits a poll
            try:
                # Retried like any request (transient failures, within the deadline).
                found = self._client.get_session(session_id, deadline=deadline, retries=None)
            except ApiError as exc:
                failed.append(exc)
                continue
            if found is None:
                self._tracker.observe_unknown(session_id, now)
            elif not isinstance(found, InvalidItem):
                self._observe_final(found, now, held)
        if failed:
            log.info(
                "could not learn how %d ended session(s) ended yet (tried again next poll): %s",
                len(failed),
                failed[0],
            )
        if held and self._attribution is not None:
            self._attribute_ended(self._attribution, held, now, deadline)

    def _observe_final(self, session: Session, now: datetime, held: dict[str, Session]) -> None:
        """Count a session seen ended, or with named keys hold it when it is first seen so."""
        if self._attribution is not None and self._tracker.first_seen_ended(session, now):
            held.setdefault(session["session_id"], session)
        else:
            self._tracker.observe_final(session, now)

    def _attribute_ended(
        self, attribution: Attribution, held: dict[str, Session], now: datetime, deadline: float
    ) -> None:
        """Count the held sessions, each start and end under the key whose history holds it."""
        config = self._config
        claims = attribution.claim_ended(
            {sid: session["created_at"] for sid, session in held.items()},
            deadline,
            page_size=config.page_size,
            # The scan met them within lookup_budget pages of the account's history; a key's
            # history is part of it, in the same order, so they are no deeper in it.
            max_pages=min(config.max_pages, config.lookup_budget),
        )
        for sid, session in held.items():
            self._tracker.observe_final(session, now, key=claims.get(sid, OTHER_KEY))

    def _scan_history(
        self,
        deadline: float,
        now: datetime,
        budget: int,
        first: Future[Answer] | None,
        held: dict[str, Session],
    ) -> int:
        """Read the newest pages of the full listing; returns the requests it made.

        A page of up to 100 sessions costs one request, so scanning is the cheap way to learn
        many ends at once, and the only way to find sessions that started and ended between
        two polls. The scan reads on while a page holds sessions created since the previous
        poll (on a newest-first listing, unseen short-lived sessions can only sit among
        those), or while more sessions are pending than lookups by id could cover with the
        requests left; otherwise those lookups are cheaper than more pages.

        Nothing here relies on the listing's order for correctness: if it is not
        newest-first the scan finds less, and ``GET /sessions/{id}`` covers what it missed.
        """
        since = self._previous_listing or now
        for page in range(1, budget + 1):
            # Page 1 may have been fetched already, alongside the live listing.
            fetched = (
                first.result()
                if page == 1 and first is not None
                else self._fetch_page(page, deadline, live=False)
            )
            result = self._client.read_sessions(fetched, page, self._config.page_size)
            fresh = False
            for item in result.sessions:
                fresh = fresh or item["created_at"] > since
                if not is_live(item):
                    self._observe_final(item, now, held)
            remaining = budget - page
            if not result.has_next or remaining == 0:
                return page
            if not fresh and self._tracker.pending_count() <= remaining:
                return page
        return budget
