"""Which sessions the reaper stops: pure functions of what the polls saw and of a clock.

- A session matches a policy when every condition the policy gives holds at the poll's
  time: idle (the poll's time less ``last_accessed_at``, or ``created_at`` for a session
  never accessed) longer than ``idle_longer_than``; age (less ``created_at``) longer than
  ``older_than``; its browser type among ``browser_types``. An excluded session matches
  nothing. Only matches are kept (``Match``), never the listing.
- A session becomes a candidate only when the same policy, unchanged, matched it at two
  consecutive successful polls (``confirm``): a listing may lag behind an agent that has
  just used its session, and one stale answer must never be enough to stop it.
- Candidates are taken oldest first (``take``), at most ``max_stops_per_poll`` at a poll and
  ``max_stops_per_hour`` in any rolling hour (``RollingHour``); the rest wait for a later
  poll, in the same order.
- A stop saves the browser time until Notte would have closed the session anyway
  (``saved_seconds``): the earlier of ``last_accessed_at + idle_timeout_minutes`` and
  ``created_at + max_duration_minutes``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from notte_exporter.api.models import LiveSession, in_api_utc, last_activity

from .policy import ReaperPolicy

HOUR = timedelta(hours=1)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Match:
    """What the reaper keeps of a live session that some policy matches now."""

    session_id: str
    browser_type: str
    created_at: datetime
    last_activity: datetime
    idle_timeout_minutes: int
    max_duration_minutes: int
    # The policies it matches, in the file's order.
    policies: tuple[str, ...]

    def age(self, now: datetime) -> float:
        return max((now - self.created_at).total_seconds(), 0.0)

    def idle(self, now: datetime) -> float:
        return max((now - self.last_activity).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A session to stop, and the policy that matched it at both polls."""

    match: Match
    policy: str


def _cutoff(now: datetime, seconds: float | None) -> datetime | None:
    """``now - seconds``: what a timestamp must be before for the condition to hold."""
    if seconds is None:
        return None
    try:
        return now - timedelta(seconds=seconds)
    except OverflowError:
        return _EARLIEST  # longer than datetimes reach: nothing is that old


class Matcher:
    """The policies of one poll, each condition turned into a cutoff at the poll's time."""

    def __init__(self, policy: ReaperPolicy, now: datetime) -> None:
        # In the API's UTC instance, like the timestamps it is compared with (see models).
        now = in_api_utc(now)
        self._excluded = frozenset(policy.exclude_sessions)
        self._rules = tuple(
            (
                rule.name,
                _cutoff(now, rule.idle_longer_than),
                _cutoff(now, rule.older_than),
                None if rule.browser_types is None else frozenset(rule.browser_types),
            )
            for rule in policy.policies
        )

    def match(self, session: LiveSession) -> Match | None:
        """The policies ``session`` matches now, or None (none, or it is excluded)."""
        session_id = session["session_id"]
        if session_id in self._excluded:
            return None
        activity = last_activity(session)
        created = session["created_at"]
        browser = session["browser_type"]
        names = tuple(
            name
            for name, idle_before, created_before, browsers in self._rules
            if (idle_before is None or activity < idle_before)
            and (created_before is None or created < created_before)
            and (browsers is None or browser in browsers)
        )
        if not names:
            return None
        return Match(
            session_id=session_id,
            browser_type=browser,
            created_at=created,
            last_activity=activity,
            idle_timeout_minutes=session["idle_timeout_minutes"],
            max_duration_minutes=session["max_duration_minutes"],
            policies=names,
        )


def confirm(
    previous: Mapping[str, Match], current: Mapping[str, Match], unchanged: Collection[str]
) -> list[Candidate]:
    """Sessions the same policy matched at the previous poll and at this one, oldest first.

    ``unchanged`` names the policies whose definition is the same at both polls: a match
    under a policy since edited proves nothing about the new one. A session several
    policies match is the first one's (in the file's order) that matched it both times.
    """
    found = []
    for session_id, now in current.items():
        before = previous.get(session_id)
        if before is None:
            continue
        policy = next(
            (name for name in now.policies if name in before.policies and name in unchanged),
            None,
        )
        if policy is not None:
            found.append(Candidate(now, policy))
    found.sort(key=lambda candidate: (candidate.match.created_at, candidate.match.session_id))
    return found


def take(candidates: Sequence[Candidate], *, per_poll: int, left_this_hour: int) -> list[Candidate]:
    """The candidates to act on now (they come oldest first); the rest wait a poll."""
    return list(candidates[: max(0, min(per_poll, left_this_hour))])


class RollingHour:
    """When actions were taken in the last hour, to keep them under an hourly limit.

    Holds at most as many moments as the limit lets in within an hour. A clock set back
    keeps the moments it left in the future counted until they are an hour old, which can
    only mean fewer actions, never more.
    """

    def __init__(self) -> None:
        self._moments: deque[datetime] = deque()

    def used(self, now: datetime) -> int:
        since = now - HOUR
        while self._moments and self._moments[0] <= since:
            self._moments.popleft()
        return len(self._moments)

    def record(self, now: datetime) -> None:
        self._moments.append(now)


def saved_seconds(match: Match, stopped_at: datetime) -> float:
    """Browser time a stop at ``stopped_at`` saved: until Notte would have closed it."""
    # The timeouts are within the API's documented limits: models refuses items beyond them.
    closes_at = min(
        match.last_activity + timedelta(minutes=match.idle_timeout_minutes),
        match.created_at + timedelta(minutes=match.max_duration_minutes),
    )
    return max((closes_at - stopped_at).total_seconds(), 0.0)
