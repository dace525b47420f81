"""The reaper: sees each successful poll's live sessions, stops what its policy names, audits.

Invariants, and why:

- It decides only from what a successful poll read, with no request of its own to list
  sessions: the poller hands it each page's live sessions as they are read
  (``Sighting.add``; matches are kept, the page is not), and completes the sighting only
  when the whole listing arrived. A failed poll's sighting is dropped: it decides nothing,
  neither a stop nor the end of a match.
- A dry run makes no request at all. It counts and logs each session it would have stopped
  once (``dry_run``), under the same limits a live run has, so its audit lines are what
  turning it off would do.
- Every stop is one ``DELETE /sessions/{id}/stop`` on the poll's thread, after its listing,
  within its time budget and under its rate-limit pacing (``NotteClient.paced``). Each one
  counts against both limits, whatever its outcome: the limits bound the write requests.
- Each session is stopped at most once: one stopped, or found gone (404, or an answer
  saying it is already stopped or closed), is remembered for longer than any session lives
  and never sent again, across reloads too (a reload swaps the policy, not this memory). A
  failed stop (429, 5xx, no answer) is not remembered: the next poll tries it again if the
  session still matches there, never sooner.
- One info line per action (the audit): session id, policy, age, idle time, browser type,
  result, and the HTTP status of a failure. None carries the key: the API's own words pass
  the client's redaction, and every line the log's (logs.py).
- A poll never fails because of it: anything unexpected here is logged and the poll stands.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from notte_exporter.api.client import NotteClient
from notte_exporter.api.models import InvalidItem, LiveSession, is_live
from notte_exporter.durations import format_duration
from notte_exporter.errors import ApiError, ShutdownRequested
from notte_exporter.labels import text_label
from notte_exporter.web.statuspage import ReaperAction, ReaperView

from .decide import Candidate, Match, Matcher, RollingHour, confirm, saved_seconds, take
from .policy import LivePolicy, ReaperPolicy

log = logging.getLogger(__name__)

STOPPED, DRY_RUN, ALREADY_GONE, FAILED = "stopped", "dry_run", "already_gone", "failed"
RESULTS = (STOPPED, DRY_RUN, ALREADY_GONE, FAILED)
RECENT_ACTIONS = 20
# Longer than any session lives (max_duration_minutes is at most a day).
REMEMBER_FOR = timedelta(hours=25)
MAX_REMEMBERED = 100_000
# What the API says when a session was stopped before (the SDK takes both for done).
_GONE_WORDS = ("already stopped", "already closed")


@dataclass(frozen=True)
class ReaperCounts:
    """What the reaper's metrics show, read at one moment."""

    dry_run: bool
    # Every policy configured since start, current ones first: counters outlive a policy
    # removed by a reload, so that one put back does not look like a counter reset.
    policies: tuple[str, ...]
    # Sessions each current policy matches, at the last successful poll.
    candidates: Mapping[str, int]
    stops: Mapping[tuple[str, str], float]
    saved_seconds: Mapping[str, float]


class _Remembered:
    """Session ids with when they were added, forgotten after ``REMEMBER_FOR`` or beyond
    ``MAX_REMEMBERED``."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, datetime] = OrderedDict()

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._ids

    def add(self, session_id: str, at: datetime) -> None:
        self._ids[session_id] = at
        self._ids.move_to_end(session_id)
        while len(self._ids) > MAX_REMEMBERED:
            self._ids.popitem(last=False)

    def forget_before(self, moment: datetime) -> None:
        while self._ids:
            session_id, added = next(iter(self._ids.items()))
            if added >= moment:
                break
            del self._ids[session_id]


class Sighting:
    """One poll's view of the live sessions, fed page by page; only matches are kept."""

    def __init__(self, reaper: Reaper, policy: ReaperPolicy, now: datetime) -> None:
        self._reaper = reaper
        self.policy = policy
        self.now = now
        self._matcher = Matcher(policy, now)
        self.matches: dict[str, Match] = {}
        # Set when reading a page failed here: the poll stands, this sighting decides nothing.
        self._broken = False

    def add(self, sessions: Iterable[LiveSession]) -> None:
        if self._broken:
            return
        done = self._reaper._done
        matcher = self._matcher
        try:
            for session in sessions:
                if session["session_id"] in done:
                    continue
                found = matcher.match(session)
                if found is not None:
                    self.matches[found.session_id] = found
        except Exception as exc:
            # Called from the poll's listing: the reaper must never be why a poll fails.
            self._broken = True
            log.error(
                "reaper: could not read this poll's sessions (%s: %s); it decides nothing",
                type(exc).__name__,
                exc,
            )
            log.debug("reaper could not read the sessions", exc_info=True)

    def complete(self, deadline: float) -> None:
        """The listing arrived whole: decide, and act (``deadline``: the poll's, monotonic)."""
        if not self._broken:
            self._reaper._complete(self, deadline)


class Reaper:
    """Stops the sessions its policy names, from what polls read (see the module)."""

    def __init__(
        self,
        policy: LivePolicy,
        client: NotteClient,
        *,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        redact: Callable[[str], str] = str,
    ) -> None:
        self._policy = policy
        # The one redaction step, for the session ids audit lines and the page show.
        self._redact = redact
        self._client = client
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # What the last successful poll matched, under which policy: the first of the two.
        self._previous: dict[str, Match] = {}
        self._previous_policy: ReaperPolicy | None = None
        # Stopped or gone: never sent again. Counted in a dry run: not counted again there.
        self._done = _Remembered()
        self._rehearsed = _Remembered()
        # Apart, so that a dry run's rehearsals never hold back the first real stops.
        self._hours = {True: RollingHour(), False: RollingHour()}
        self._names: dict[str, None] = dict.fromkeys(p.name for p in policy.current.policies)
        self._candidates: dict[str, int] = {}
        self._stops: dict[tuple[str, str], float] = {}
        self._saved: dict[str, float] = {}
        self._actions: deque[ReaperAction] = deque(maxlen=RECENT_ACTIONS)

    @property
    def policy(self) -> ReaperPolicy:
        return self._policy.current

    def requests_per_poll(self) -> int:
        """Write requests a poll may make, for the poll's rate-limit budget."""
        policy = self.policy
        return 0 if policy.dry_run else policy.max_stops_per_poll

    def begin(self, now: datetime) -> Sighting:
        """Start watching a poll's listing taken at ``now``."""
        return Sighting(self, self.policy, now)

    def reload(self) -> str | None:
        """Re-read the policy file (SIGHUP); returns what changed, or None."""
        return self._policy.reload()

    def watch(self, stop: threading.Event) -> None:
        """Look at the policy file once a second until ``stop`` is set (a thread's job)."""
        self._policy.watch(stop)

    def _complete(self, sighting: Sighting, deadline: float) -> None:
        try:
            self._decide_and_act(sighting, deadline)
        except ShutdownRequested:
            raise
        except Exception as exc:
            # Not the poll's failure: its picture is whole. The next poll decides afresh.
            log.error("reaper: this poll's round failed (%s: %s)", type(exc).__name__, exc)
            log.debug("reaper round failed", exc_info=True)

    def _decide_and_act(self, sighting: Sighting, deadline: float) -> None:
        policy = sighting.policy
        previous = self._previous_policy
        unchanged = {
            rule.name
            for rule in policy.policies
            if previous is not None and rule in previous.policies
        }
        candidates = confirm(self._previous, sighting.matches, unchanged)
        self._previous, self._previous_policy = sighting.matches, policy
        matching = Counter(name for found in sighting.matches.values() for name in found.policies)
        with self._lock:
            self._names.update(dict.fromkeys(rule.name for rule in policy.policies))
            self._candidates = {rule.name: matching[rule.name] for rule in policy.policies}
        if policy.dry_run:
            candidates = [c for c in candidates if c.match.session_id not in self._rehearsed]
        hour = self._hours[policy.dry_run]
        now = self._clock()
        chosen = take(
            candidates,
            per_poll=policy.max_stops_per_poll,
            left_this_hour=policy.max_stops_per_hour - hour.used(now),
        )
        for index, candidate in enumerate(chosen):
            if not policy.dry_run and self._monotonic() >= deadline:
                log.info(
                    "reaper: the poll's time is up; %d stop(s) wait for the next poll",
                    len(chosen) - index,
                )
                break
            hour.record(self._clock())
            if policy.dry_run:
                self._rehearsed.add(candidate.match.session_id, now)
                self._record(candidate, sighting.now, DRY_RUN)
            else:
                self._stop(candidate, sighting.now, deadline)
        if len(candidates) > len(chosen):
            log.debug(
                "reaper: %d candidate(s) wait for a later poll (limits: %d per poll, %d per hour)",
                len(candidates) - len(chosen),
                policy.max_stops_per_poll,
                policy.max_stops_per_hour,
            )
        forget = now - REMEMBER_FOR
        self._done.forget_before(forget)
        self._rehearsed.forget_before(forget)

    def _stop(self, candidate: Candidate, seen_at: datetime, deadline: float) -> None:
        session_id = candidate.match.session_id
        status: int | None = 200
        why = ""
        try:
            answer = self._client.stop_session(session_id, deadline=deadline)
        except ApiError as exc:
            status, why = exc.status, exc.message
            gone = any(words in exc.message.lower() for words in _GONE_WORDS)
            result = ALREADY_GONE if gone else FAILED
        except ShutdownRequested:
            raise
        except Exception as exc:
            # Whether it was made is unknown: tried again at the next poll if still listed.
            result, status, why = FAILED, None, f"{type(exc).__name__}: {exc}"
        else:
            if answer is None:
                result, status, why = ALREADY_GONE, 404, "the API does not know it"
            elif isinstance(answer, InvalidItem):
                result, why = FAILED, f"the answer is not a session: {answer.problem}"
            elif answer["status"] == "closed":
                result = STOPPED
            elif is_live(answer):
                result, why = FAILED, f"the API answered that it is still {answer['status']}"
            else:
                result, why = ALREADY_GONE, f"it had ended already ({answer['status']})"
        stopped_at = self._clock()
        if result in (STOPPED, ALREADY_GONE):
            self._done.add(session_id, stopped_at)
        saved = saved_seconds(candidate.match, stopped_at) if result == STOPPED else 0.0
        self._record(candidate, seen_at, result, status=status, why=why, saved=saved)

    def _record(
        self,
        candidate: Candidate,
        seen_at: datetime,
        result: str,
        *,
        status: int | None = None,
        why: str = "",
        saved: float = 0.0,
    ) -> None:
        found, policy = candidate.match, candidate.policy
        age, idle = found.age(seen_at), found.idle(seen_at)
        # The API's text, shown as a label value is: a megabyte id is no megabyte line.
        shown_id = text_label(found.session_id, self._redact)
        with self._lock:
            key = (policy, result)
            self._stops[key] = self._stops.get(key, 0.0) + 1
            self._saved[policy] = self._saved.get(policy, 0.0) + saved
            self._actions.appendleft(
                ReaperAction(
                    at=self._clock(),
                    session_id=shown_id,
                    policy=policy,
                    result=result,
                    browser_type=found.browser_type,
                    age_seconds=age,
                    idle_seconds=idle,
                    http_status=status if result in (FAILED, ALREADY_GONE) else None,
                )
            )
        fields: dict[str, object] = {
            "session_id": shown_id,
            "policy": policy,
            "result": result,
            "age_seconds": round(age, 3),
            "idle_seconds": round(idle, 3),
            "browser_type": found.browser_type,
        }
        if result in (FAILED, ALREADY_GONE) and status is not None:
            fields["status"] = status
        facts = (
            f"(policy {policy}, {found.browser_type}, age {format_duration(round(age))}, "
            f"idle {format_duration(round(idle))})"
        )
        if result == STOPPED:
            message = f"reaper stopped session {shown_id} {facts}"
        elif result == DRY_RUN:
            message = (
                f"reaper dry run: would stop session {shown_id} {facts}; "
                "nothing was sent (dry_run: true)"
            )
        elif result == ALREADY_GONE:
            message = (
                f"reaper found session {shown_id} already gone {facts}: {why}; not tried again"
            )
        else:
            message = (
                f"reaper could not stop session {shown_id} {facts}: {why}; tried "
                "again at the next poll if it still matches"
            )
        log.info("%s", message, extra={"fields": fields})

    def counts(self) -> ReaperCounts:
        policy = self.policy
        current = [rule.name for rule in policy.policies]
        with self._lock:
            names = tuple(dict.fromkeys([*current, *self._names]))
            return ReaperCounts(
                dry_run=policy.dry_run,
                policies=names,
                candidates={name: self._candidates.get(name, 0) for name in current},
                stops=dict(self._stops),
                saved_seconds=dict(self._saved),
            )

    def view(self) -> ReaperView:
        """The status page's Reaper section, as of now."""
        policy = self.policy
        with self._lock:
            candidates = dict(self._candidates)
            actions = tuple(self._actions)
        return ReaperView(
            config_file=str(self._policy.path),
            dry_run=policy.dry_run,
            max_stops_per_poll=policy.max_stops_per_poll,
            max_stops_per_hour=policy.max_stops_per_hour,
            excluded=len(set(policy.exclude_sessions)),
            policies=tuple(
                (
                    rule.name,
                    rule.conditions(),
                    "every type" if rule.browser_types is None else ", ".join(rule.browser_types),
                )
                for rule in policy.policies
            ),
            candidates=candidates,
            actions=actions,
        )
