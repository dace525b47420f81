"""An in-memory Notte account: sessions that start, transfer bytes, fail, stop and time out.

Two ways to drive it, freely mixed:

* scripted control for exact tests (`start_session`, `access`, `stop`, `fail`, `set`,
  `remove`, `advance`), and
* an autopilot `profile` ("steady" or "leak") that makes the account live by itself,
  deterministically from `seed` given the same sequence of clock readings.

Nothing runs in the background: every read or control call first brings the account up to
the clock's current time (`tick()`), processing autopilot events and server-side timeouts in
time order. Sessions are kept as raw JSON-ready field dicts so tests can produce any odd or
malformed `SessionResponse` the real API might send.

An account may issue named keys besides its own (`SimulatedKey`, `issue_key`): each session
remembers the key that created it (None: the account key), `only_current_token` listings
hold only the requesting key's sessions, and `truth()` keeps what each key's sessions really
did, for tests to compare with what the exporter attributes to them. A key can be revoked,
reinstated and rotated; its name is public, its value is a secret the account only compares.
"""

from __future__ import annotations

import copy
import heapq
import random
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from pydantic import TypeAdapter

from .billing import PLANS, Ledger, UsagePlan, month_start
from .clock import Clock, ManualClock, SystemClock

__all__ = [
    "BROWSER_TYPES",
    "MISSING",
    "PROFILES",
    "TERMINAL_STATUSES",
    "KeyTruth",
    "SimulatedAccount",
    "SimulatedKey",
]

#: Statuses after which a session is no longer live (absent from only_active=true lists).
TERMINAL_STATUSES: Final = frozenset({"closed", "error", "timed_out"})
BROWSER_TYPES: Final = ("chromium", "chrome", "firefox", "chrome-nightly", "chrome-turbo")
PROFILES: Final = ("steady", "leak")

# Fields the API computes; they are recomputed on every read unless set by hand.
_DERIVED_FIELDS: Final = frozenset({"duration", "timeout_minutes"})

_DURATION_ADAPTER: Final = TypeAdapter(timedelta)


class _Missing:
    """Sentinel type: `set(id, field=MISSING)` drops the field from the JSON entirely."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def iso_timestamp(moment: datetime) -> str:
    """Render a datetime the way the API (pydantic) does: ISO 8601, UTC as `Z`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_duration(span: timedelta) -> str:
    """Render a duration the way the API (pydantic) does, e.g. `PT41.286072S`."""
    return str(_DURATION_ADAPTER.dump_python(span, mode="json"))


def _as_datetime(value: object) -> datetime | None:
    # Raw overrides may hold strings (even naive or garbage ones): timeouts use what parses.
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _as_minutes(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _byte_totals(session: _Session) -> tuple[int, int]:
    values = session.fields
    totals = []
    for name in ("network_request_bytes", "network_response_bytes"):
        value = values.get(name)
        totals.append(value if isinstance(value, int) and not isinstance(value, bool) else 0)
    return totals[0], totals[1]


def _render_value(value: object) -> object:
    if isinstance(value, datetime):
        return iso_timestamp(value)
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, list | dict):
        return copy.deepcopy(value)
    return value


Fate = Literal["manual", "error", "abandon", "max_duration", "stuck"]


@dataclass(frozen=True)
class SimulatedKey:
    """A named key of the account: `share` of the autopilot's new sessions start with it
    (the account key starts the rest); a key that `leaks` never stops its sessions, so each
    waits for its idle timeout. `value` None: one is made from the account's seed."""

    name: str
    value: str | None = None
    share: float = 0.0
    leaks: bool = False


@dataclass
class KeyTruth:
    """What the sessions one key started really did, for tests to compare with the exporter.

    Browser seconds run from each session's `created_at` to its `closed_at` (or now, while
    live) in clock seconds (what the exporter counts, whatever the speed); idle seconds are
    `closed_at - last_accessed_at` of ended sessions; bytes are every session's totals, the
    live ones as they are now. Ends are counted by (status, close_reason).
    """

    starts: int = 0
    ends: Counter[tuple[str, str]] = field(default_factory=Counter)
    request_bytes: int = 0
    response_bytes: int = 0
    browser_seconds: float = 0.0
    idle_seconds: dict[str, float] = field(default_factory=dict)
    live: int = 0


@dataclass
class _Plan:
    """What the autopilot intends for one session."""

    fate: Fate
    abandon_at: datetime | None = None
    error_message: str = ""
    # A live session may carry an error text (a failed navigation) without ending.
    transient_error_at: datetime | None = None


@dataclass
class _Session:
    key: str
    seq: int
    # The name of the key that created it; None for the account key.
    owner: str | None
    created_ref: datetime
    fields: dict[str, Any]
    pinned: set[str] = field(default_factory=set)
    enforce_timeouts: bool = True
    plan: _Plan | None = None
    # Billing: time is billed from here (the account's start for sessions older than it),
    # proxied bytes above the base; what an ended session cost is booked once, in `booked`.
    billed_from: datetime | None = None
    bytes_base: int = 0
    booked: tuple[float, int] | None = None
    # Whether its end is in the truth already (an end counts once).
    ended_in_truth: bool = False


@dataclass(frozen=True)
class _Profile:
    """Autopilot parameters; times are simulated seconds (divided by speed for wall time)."""

    mean_interarrival_s: float
    fates: tuple[tuple[Fate, float], ...]
    stuck_at_start: bool
    stuck_cap: int
    # (minutes, weights) of the sessions' idle timeouts and max durations.
    idle_timeouts: tuple[tuple[int, ...], tuple[int, ...]] = ((3, 5, 10), (70, 20, 10))
    max_durations: tuple[tuple[int, ...], tuple[int, ...]] = ((15, 30, 60), (70, 20, 10))


_PROFILE_PARAMS: Final[dict[str, _Profile]] = {
    # About six sessions at once; most end properly.
    "steady": _Profile(
        mean_interarrival_s=60.0,
        fates=(("manual", 70), ("error", 10), ("abandon", 12), ("max_duration", 8)),
        stuck_at_start=False,
        stuck_cap=0,
    ),
    # A client that forgets to stop its sessions, on a platform that sometimes fails to close.
    "leak": _Profile(
        mean_interarrival_s=50.0,
        fates=(("abandon", 70), ("manual", 20), ("error", 5), ("max_duration", 3), ("stuck", 2)),
        stuck_at_start=True,
        stuck_cap=6,
        # Generous timeouts, as a client that forgets its sessions tends to ask for: each
        # leaked browser waits longer, billed, for its idle timeout (most of the idle waste).
        idle_timeouts=((5, 10), (50, 50)),
        max_durations=((15, 30, 60), (20, 40, 40)),
    ),
}

_BROWSER_WEIGHTS: Final = (60, 20, 12, 5, 3)
_ERROR_MESSAGES: Final = (
    "Browser crashed unexpectedly",
    "Proxy connection failed",
    "Navigation timeout of 30000 ms exceeded",
    "Target page, context or browser has been closed",
)
_USER_AGENTS: Final = (
    None,
    None,
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
)
# Simulated time replayed before the first reading, so the account starts populated.
_WARMUP_S: Final = 30 * 60.0
# Arrivals further back than this are skipped when catching up a long gap between readings,
# so a server left unread for hours at high speed does not replay millions of events.
_MAX_CATCHUP_S: Final = 2 * 3600.0


class SimulatedAccount:
    """A thread-safe simulated Notte account (see the module docstring)."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        seed: int = 1,
        profile: Literal["steady", "leak"] | None = None,
        speed: float = 1.0,
        enforce_timeouts: bool = True,
        history_limit: int = 10_000,
        usage_plan: UsagePlan | None = None,
        keys: Iterable[SimulatedKey] = (),
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if profile is not None and profile not in _PROFILE_PARAMS:
            raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
        if history_limit < 0:
            raise ValueError("history_limit must be >= 0")
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.RLock()
        self.seed = seed
        self.profile = profile
        self.speed = float(speed)
        #: False: the platform fails to close sessions past their limits ("overdue").
        self.enforce_timeouts = enforce_timeouts
        self.history_limit = history_limit
        self._ids = random.Random(f"notte-simulator-ids:{seed}")
        self._rng = random.Random(f"notte-simulator:{seed}:{profile}")
        self._sessions: dict[str, _Session] = {}
        # Named keys by name, the current value of each, and those revoked (401).
        self._keys: dict[str, SimulatedKey] = {}
        self._key_values: dict[str, str] = {}
        self._revoked: set[str] = set()
        self._rotated_out: set[str] = set()
        # Apart from _rng, so that an account without keys replays exactly as before.
        self._key_rng = random.Random(f"notte-simulator-keys:{seed}")
        self._truth: dict[str | None, KeyTruth] = {None: KeyTruth()}
        for spec in keys:
            self._issue(spec)
        self._live: dict[str, None] = {}  # insertion-ordered set
        self._closed: OrderedDict[str, None] = OrderedDict()  # oldest-closed first
        self._seq = 0
        self._events: list[tuple[datetime, int, str, str]] = []
        self._event_seq = 0
        now = self._clock.now()
        self._last_tick = now
        #: The plan and rates `GET /usage` reports (see billing.py).
        self.usage_plan = usage_plan if usage_plan is not None else PLANS[profile]
        self._ledger = Ledger(self.usage_plan, month_start(now))
        if profile is not None:
            params = _PROFILE_PARAMS[profile]
            self._schedule(now - self._wall(_WARMUP_S), "arrive", "")
            self._run_events(now)
            if params.stuck_at_start:
                self._start_stuck_sessions(now)
        # What happened before the account started is in the plan's opening spend.
        self._ledger = Ledger(self.usage_plan, month_start(now))
        for session in self._sessions.values():
            session.billed_from = now
            session.bytes_base = self._proxied_bytes(session)
            session.booked = (0.0, 0) if session.key in self._closed else None

    # ----------------------------------------------------------------- time

    @property
    def clock(self) -> Clock:
        return self._clock

    def now(self) -> datetime:
        return self._clock.now()

    def tick(self) -> datetime:
        """Bring the account up to the clock's time; return that time."""
        with self._lock:
            now = self._clock.now()
            self._tick_locked(now)
            return now

    def advance(self, seconds: float) -> datetime:
        """Advance the account's ManualClock by `seconds`, then tick."""
        if not isinstance(self._clock, ManualClock):
            raise TypeError("advance() needs the account to run on a ManualClock")
        with self._lock:
            self._clock.advance(seconds)
            return self.tick()

    def _wall(self, simulated_seconds: float) -> timedelta:
        return timedelta(seconds=simulated_seconds / self.speed)

    def _tick_locked(self, now: datetime) -> None:
        if self._ledger.roll_over(now):
            for key in self._live:
                session = self._sessions[key]
                session.bytes_base = self._proxied_bytes(session)
        if now > self._last_tick:
            self._run_events(now)
            self._last_tick = now
        self._expire_all(now)

    # ------------------------------------------------------------------ keys

    def issue_key(
        self, name: str, value: str | None = None, *, share: float = 0.0, leaks: bool = False
    ) -> str:
        """Issue a named key (see `SimulatedKey`); returns its value."""
        with self._lock:
            return self._issue(SimulatedKey(name, value, share, leaks))

    def revoke_key(self, name: str) -> None:
        """The key's value answers 401 from now on; its sessions live on."""
        with self._lock:
            self._named(name)
            self._revoked.add(name)

    def reinstate_key(self, name: str) -> None:
        """A revoked key works again, with the value it had."""
        with self._lock:
            self._named(name)
            self._revoked.discard(name)

    def rotate_key(self, name: str, value: str | None = None) -> str:
        """Replace the key's value: the old one answers 401, the new one (returned) works."""
        with self._lock:
            self._named(name)
            self._key_values[name] = value if value is not None else self._new_key_value(name)
            self._revoked.discard(name)
            return self._key_values[name]

    def key_named_by(self, token: str) -> str | None:
        """The name of the named key whose current, unrevoked value is `token`, else None."""
        with self._lock:
            for name, value in self._key_values.items():
                if value == token and name not in self._revoked:
                    return name
            return None

    def is_dead_key(self, token: str) -> bool:
        """Whether `token` is a named key's revoked or rotated-out value (answered 401)."""
        with self._lock:
            return token in self._rotated_out or any(
                value == token for name, value in self._key_values.items() if name in self._revoked
            )

    @property
    def key_names(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._keys)

    def truth(self, key: str | None = None) -> KeyTruth:
        """The ground truth of the sessions `key` started (None: the account key), now."""
        with self._lock:
            now = self._clock.now()
            self._tick_locked(now)
            if key is not None:
                self._named(key)
            ended = self._truth.setdefault(key, KeyTruth())
            result = KeyTruth(
                starts=ended.starts,
                ends=Counter(ended.ends),
                request_bytes=ended.request_bytes,
                response_bytes=ended.response_bytes,
                browser_seconds=ended.browser_seconds,
                idle_seconds=dict(ended.idle_seconds),
            )
            for sid in self._live:
                session = self._sessions[sid]
                if session.owner != key:
                    continue
                result.live += 1
                sent, received = _byte_totals(session)
                result.request_bytes += sent
                result.response_bytes += received
                created = _as_datetime(session.fields.get("created_at")) or session.created_ref
                result.browser_seconds += max((now - created).total_seconds(), 0.0)
            return result

    def owner_of(self, session_id: str) -> str | None:
        """The name of the key that created a session (None: the account key)."""
        with self._lock:
            return self._get(session_id).owner

    # ------------------------------------------------------- scripted control

    def start_session(
        self, *, enforce_timeouts: bool = True, key: str | None = None, **fields: Any
    ) -> str:
        """Start a live session; `fields` override the SessionResponse defaults.

        `enforce_timeouts=False` makes this one session immune to server-side timeouts (the
        platform fails to close it); `key` names the named key that starts it (None: the
        account key). Returns the session id (the given `session_id` or a fresh UUID).
        """
        with self._lock:
            if key is not None:
                self._named(key)
            now = self._clock.now()
            self._tick_locked(now)
            return self._create(fields, enforce_timeouts, now, owner=key)

    def access(self, session_id: str, request_bytes: int = 0, response_bytes: int = 0) -> None:
        """Record client activity: add to the byte totals and bump last_accessed_at."""
        if request_bytes < 0 or response_bytes < 0:
            raise ValueError("byte counts added by access() must be >= 0")
        with self._lock:
            now = self._clock.now()
            self._tick_locked(now)
            session = self._live_session(session_id)
            self._touch(session, now, request_bytes, response_bytes)

    def stop(self, session_id: str, close_reason: str = "manual") -> None:
        """Stop a live session as a client would: status closed, close_reason manual (or
        the one given, as `DELETE /sessions/{id}/stop?close_reason=error` does)."""
        with self._lock:
            now = self._clock.now()
            self._tick_locked(now)
            session = self._live_session(session_id)
            self._close(session, "closed", close_reason, now)

    def fail(self, session_id: str, error: str = "Browser crashed unexpectedly") -> None:
        """End a live session in error: status error, close_reason error, `error` set."""
        with self._lock:
            now = self._clock.now()
            self._tick_locked(now)
            session = self._live_session(session_id)
            session.fields["error"] = error
            self._close(session, "error", "error", now)

    def set(self, session_id: str, **fields: Any) -> None:
        """Override any field with any value (MISSING removes it), for odd or malformed data.

        Setting `status` to a terminal value moves the session to the history, and back.
        Datetime values are rendered as ISO 8601; strings are sent as they are.
        """
        with self._lock:
            self._tick_locked(self._clock.now())
            session = self._get(session_id)
            self._apply(session, fields)
            self._refresh(session)

    def remove(self, session_id: str) -> None:
        """Forget a session entirely (GET /sessions/{id} then answers 404)."""
        with self._lock:
            session = self._get(session_id)
            self._book(session, self._last_tick)  # forgotten by the API, billed all the same
            del self._sessions[session_id]
            self._live.pop(session_id, None)
            self._closed.pop(session_id, None)

    # ------------------------------------------------------------------ reads

    def session(self, session_id: str) -> dict[str, Any]:
        """The JSON-ready SessionResponse of one session; KeyError if unknown."""
        with self._lock:
            now = self._clock.now()
            self._tick_locked(now)
            return self._render(self._get(session_id), now)

    def sessions(
        self, *, only_active: bool = True, include_system: bool = False
    ) -> list[dict[str, Any]]:
        """JSON-ready sessions, newest created first."""
        with self._lock:
            now = self._clock.now()
            self._tick_locked(now)
            return [self._render(s, now) for s in self._ordered(only_active, include_system)]

    def usage(self) -> dict[str, Any]:
        """The `GET /usage` body of the current period (month), from the sessions' bills."""
        with self._lock:
            now = self._clock.now()
            self._tick_locked(now)
            seconds = 0.0
            proxy_bytes = 0
            for key in self._live:
                session_seconds, session_bytes = self._bill(self._sessions[key], now)
                seconds += session_seconds
                proxy_bytes += session_bytes
            return self._ledger.report(now, seconds, proxy_bytes)

    def session_ids(self, *, only_active: bool = True) -> list[str]:
        """Ids of the sessions, newest created first."""
        with self._lock:
            self._tick_locked(self._clock.now())
            return [s.key for s in self._ordered(only_active, include_system=True)]

    def page(
        self,
        page: int = 1,
        page_size: int = 10,
        *,
        only_active: bool = True,
        include_system: bool = False,
        only_current_token: bool = False,
        key: str | None = None,
    ) -> dict[str, Any]:
        """One page of `GET /sessions` as the API returns it to `key` (None: the account
        key); `only_current_token` keeps only the sessions that key started."""
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        with self._lock:
            now = self._clock.now()
            self._tick_locked(now)
            ordered = self._ordered(only_active, include_system)
            if only_current_token:
                ordered = [s for s in ordered if s.owner == key]
            start = (page - 1) * page_size
            chosen = ordered[start : start + page_size]
            return {
                "items": [self._render(s, now) for s in chosen],
                "page": page,
                "page_size": page_size,
                "has_next": start + page_size < len(ordered),
                "has_previous": page > 1,
            }

    # -------------------------------------------------------------- internals

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _issue(self, spec: SimulatedKey) -> str:
        if spec.name in self._keys:
            raise ValueError(f"key {spec.name!r} is issued already")
        if spec.share < 0:
            raise ValueError("a key's share must be >= 0")
        if sum(k.share for k in self._keys.values()) + spec.share > 1:
            raise ValueError("the keys' shares add up to more than 1")
        self._keys[spec.name] = spec
        self._key_values[spec.name] = (
            spec.value if spec.value is not None else self._new_key_value(spec.name)
        )
        self._truth[spec.name] = KeyTruth()
        return self._key_values[spec.name]

    def _new_key_value(self, name: str) -> str:
        old = self._key_values.get(name)
        if old is not None:
            self._rotated_out.add(old)
        return f"sk-sim-{name}-{self._key_rng.getrandbits(64):016x}"

    def _named(self, name: str) -> SimulatedKey:
        try:
            return self._keys[name]
        except KeyError:
            raise KeyError(f"no key named {name!r} was issued") from None

    def _pick_owner(self) -> str | None:
        """The key an autopilot session starts with, by the keys' shares."""
        if not self._keys:
            return None
        draw = self._key_rng.random()
        for spec in self._keys.values():
            if draw < spec.share:
                return spec.name
            draw -= spec.share
        return None

    def _count_end(self, session: _Session) -> None:
        """Put an ended session into its key's truth, once."""
        if session.ended_in_truth:
            return
        session.ended_in_truth = True
        truth = self._truth.setdefault(session.owner, KeyTruth())
        values = session.fields
        status, reason = values.get("status"), values.get("close_reason")
        truth.ends[(str(status), str(reason))] += 1
        sent, received = _byte_totals(session)
        truth.request_bytes += sent
        truth.response_bytes += received
        created = _as_datetime(values.get("created_at")) or session.created_ref
        closed = _as_datetime(values.get("closed_at")) or self._last_tick
        truth.browser_seconds += max((closed - created).total_seconds(), 0.0)
        accessed = _as_datetime(values.get("last_accessed_at")) or created
        idle = (closed - max(accessed, created)).total_seconds()
        truth.idle_seconds[str(reason)] = truth.idle_seconds.get(str(reason), 0.0) + max(idle, 0.0)

    def _new_id(self) -> str:
        while True:
            key = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
            if key not in self._sessions:
                return key

    @staticmethod
    def _default_fields(key: str, created: datetime) -> dict[str, Any]:
        # Same order as the OpenAPI SessionResponse, then the fields the SDK model adds.
        return {
            "session_id": key,
            "idle_timeout_minutes": 3,
            "max_duration_minutes": 15,
            "created_at": created,
            "closed_at": None,
            "last_accessed_at": created,
            "duration": None,  # derived
            "status": "active",
            "steps": [],
            "error": None,
            "proxies": False,
            "browser_type": "chromium",
            "use_file_storage": False,
            "network_request_bytes": 0,
            "network_response_bytes": 0,
            "user_agent": None,
            "viewport_width": None,
            "viewport_height": None,
            "headless": True,
            "solve_captchas": None,
            "cdp_url": None,
            "viewer_url": None,
            "web_bot_auth": False,
            "timeout_minutes": None,  # derived
            "close_reason": None,
            "auth_ids": [],
            "system_hidden": False,
        }

    def _create(
        self,
        fields: dict[str, Any],
        enforce_timeouts: bool,
        now: datetime,
        *,
        owner: str | None = None,
    ) -> str:
        key = fields.get("session_id")
        if not isinstance(key, str):
            key = self._new_id()
        if key in self._sessions:
            raise ValueError(f"session {key!r} already exists")
        created = _as_datetime(fields.get("created_at")) or now
        values = self._default_fields(key, created)
        if "created_at" in fields and "last_accessed_at" not in fields:
            values["last_accessed_at"] = fields["created_at"]
        session = _Session(
            key=key,
            seq=self._next_seq(),
            owner=owner,
            created_ref=created,
            fields=values,
            enforce_timeouts=enforce_timeouts,
            billed_from=created,
        )
        self._sessions[key] = session
        self._ledger.sessions += 1
        self._truth.setdefault(owner, KeyTruth()).starts += 1
        self._apply(session, fields)
        self._refresh(session)
        return key

    def _get(self, session_id: str) -> _Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise KeyError(f"unknown session {session_id!r}") from None

    def _live_session(self, session_id: str) -> _Session:
        session = self._get(session_id)
        if session_id not in self._live:
            status = session.fields.get("status")
            raise ValueError(f"session {session_id!r} is not live (status {status!r})")
        return session

    @staticmethod
    def _apply(session: _Session, fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            if name in _DERIVED_FIELDS:
                session.pinned.add(name)
            if value is MISSING:
                session.fields.pop(name, None)
            else:
                session.fields[name] = value

    def _refresh(self, session: _Session) -> None:
        """Keep the live set and the bounded history in step with the session's status."""
        status = session.fields.get("status")
        if isinstance(status, str) and status in TERMINAL_STATUSES:
            end = _as_datetime(session.fields.get("closed_at")) or self._last_tick
            self._book(session, end)
            self._count_end(session)
            self._live.pop(session.key, None)
            if session.key not in self._closed:
                self._closed[session.key] = None
            while len(self._closed) > self.history_limit:
                oldest, _ = self._closed.popitem(last=False)
                del self._sessions[oldest]
        else:
            if session.booked is not None:  # set() made an ended session live again
                self._ledger.billed_seconds -= session.booked[0]
                self._ledger.billed_proxy_bytes -= session.booked[1]
                session.booked = None
            self._closed.pop(session.key, None)
            self._live[session.key] = None

    @staticmethod
    def _proxied_bytes(session: _Session) -> int:
        values = session.fields
        if values.get("proxies") is not True:
            return 0
        return sum(
            value
            for value in (values.get("network_request_bytes"), values.get("network_response_bytes"))
            if isinstance(value, int) and not isinstance(value, bool)
        )

    def _bill(self, session: _Session, end: datetime) -> tuple[float, int]:
        """Simulated browser seconds and proxied bytes of one session this period, to `end`."""
        start = max(session.billed_from or session.created_ref, self._ledger.period_start)
        seconds = max((end - start).total_seconds(), 0.0) * self.speed
        return seconds, max(self._proxied_bytes(session) - session.bytes_base, 0)

    def _book(self, session: _Session, end: datetime) -> None:
        """Book an ended session's cost into the period, once."""
        if session.booked is not None:
            return
        session.booked = self._bill(session, end)
        self._ledger.billed_seconds += session.booked[0]
        self._ledger.billed_proxy_bytes += session.booked[1]

    def _touch(self, session: _Session, now: datetime, request: int, response: int) -> None:
        values = session.fields
        for name, extra in (
            ("network_request_bytes", request),
            ("network_response_bytes", response),
        ):
            current = values.get(name)
            values[name] = (current if isinstance(current, int) else 0) + extra
        values["last_accessed_at"] = now

    def _close(self, session: _Session, status: str, reason: str, at: datetime) -> None:
        session.fields["status"] = status
        session.fields["close_reason"] = reason
        session.fields["closed_at"] = at
        self._refresh(session)

    def _deadline(self, session: _Session) -> tuple[datetime, str] | None:
        """When and why the platform would close this session, if it enforces timeouts."""
        if not (self.enforce_timeouts and session.enforce_timeouts):
            return None
        values = session.fields
        candidates: list[tuple[datetime, str]] = []
        last = _as_datetime(values.get("last_accessed_at"))
        idle = _as_minutes(values.get("idle_timeout_minutes"))
        if last is not None and idle is not None:
            candidates.append((last + self._wall(idle * 60), "idle_timeout"))
        created = _as_datetime(values.get("created_at"))
        longest = _as_minutes(values.get("max_duration_minutes"))
        if created is not None and longest is not None:
            candidates.append((created + self._wall(longest * 60), "max_duration"))
        return min(candidates) if candidates else None

    def _expire(self, session: _Session, now: datetime) -> bool:
        """Close the session if it is past a limit ("now() > limit", as the API documents)."""
        deadline = self._deadline(session)
        if deadline is None or not deadline[0] < now:
            return False
        # closed_at is the moment the limit passed, not the moment we noticed.
        self._close(session, "timed_out", deadline[1], deadline[0])
        return True

    def _expire_all(self, now: datetime) -> None:
        for key in list(self._live):
            self._expire(self._sessions[key], now)

    def _ordered(self, only_active: bool, include_system: bool) -> list[_Session]:
        keys = self._live if only_active else self._sessions
        chosen = [self._sessions[k] for k in keys]
        if not include_system:
            chosen = [s for s in chosen if s.fields.get("system_hidden") is not True]
        chosen.sort(
            key=lambda s: (_as_datetime(s.fields.get("created_at")) or s.created_ref, s.seq),
            reverse=True,
        )
        return chosen

    @staticmethod
    def _render(session: _Session, now: datetime) -> dict[str, Any]:
        values = session.fields
        out = {name: _render_value(value) for name, value in values.items()}
        if "duration" not in session.pinned:
            created = _as_datetime(values.get("created_at"))
            closed = _as_datetime(values.get("closed_at"))
            end = closed if closed is not None else now
            if created is not None:
                out["duration"] = iso_duration(max(end - created, timedelta(0)))
        if "timeout_minutes" not in session.pinned:
            out["timeout_minutes"] = values.get("idle_timeout_minutes")
        return out

    # -------------------------------------------------------------- autopilot

    def _schedule(self, at: datetime, kind: str, key: str) -> None:
        self._event_seq += 1
        heapq.heappush(self._events, (at, self._event_seq, kind, key))

    def _run_events(self, now: datetime) -> None:
        catchup_floor = now - self._wall(_MAX_CATCHUP_S)
        while self._events and self._events[0][0] <= now:
            at, _, kind, key = heapq.heappop(self._events)
            if kind == "arrive":
                if at >= catchup_floor:
                    self._arrive(at)
                mean = _PROFILE_PARAMS[self.profile or "steady"].mean_interarrival_s
                self._schedule(at + self._wall(self._rng.expovariate(1.0 / mean)), kind, "")
                continue
            session = self._sessions.get(key)
            if session is None or key not in self._live or self._expire(session, at):
                continue
            if kind == "access":
                self._autopilot_access(session, at)
            elif kind == "end":
                self._autopilot_end(session, at)

    def _choose_fate(self) -> Fate:
        params = _PROFILE_PARAMS[self.profile or "steady"]
        names = [name for name, _ in params.fates]
        weights = [weight for _, weight in params.fates]
        fate = self._rng.choices(names, weights)[0]
        if fate == "stuck":
            stuck_live = sum(
                1
                for k in self._live
                if (plan := self._sessions[k].plan) is not None and plan.fate == "stuck"
            )
            if stuck_live >= params.stuck_cap:
                fate = "abandon"
        return fate

    def _arrive(self, at: datetime) -> None:
        rng = self._rng
        browser = rng.choices(BROWSER_TYPES, _BROWSER_WEIGHTS)[0]
        params = _PROFILE_PARAMS[self.profile or "steady"]
        idle = rng.choices(*params.idle_timeouts)[0]
        longest = rng.choices(*params.max_durations)[0]
        headless = rng.random() >= 0.15
        fields: dict[str, Any] = {
            "created_at": at,
            "idle_timeout_minutes": idle,
            "max_duration_minutes": longest,
            "browser_type": browser,
            "proxies": rng.random() < 0.3,
            "solve_captchas": rng.choice((True, False, None)) if rng.random() < 0.4 else None,
            "use_file_storage": rng.random() < 0.15,
            "web_bot_auth": rng.random() < 0.1,
            "headless": headless,
            "user_agent": rng.choice(_USER_AGENTS),
            "viewport_width": 1280 if headless else 1920,
            "viewport_height": 720 if headless else 1080,
        }
        fate = self._choose_fate()
        owner = self._pick_owner()
        if owner is not None and self._keys[owner].leaks:
            fate = "abandon"  # its client never stops a session: the idle timeout will
        plan = _Plan(fate=fate)
        key = self._create(fields, fate != "stuck", at, owner=owner)
        session = self._sessions[key]
        session.plan = plan
        if fate in ("manual", "error"):
            limit_s = longest * 60 - 30
            lifetime = (
                rng.uniform(20, min(600, limit_s)) if fate == "manual" else rng.uniform(10, 300)
            )
            plan.error_message = rng.choice(_ERROR_MESSAGES)
            self._schedule(at + self._wall(lifetime), "end", key)
        elif fate in ("abandon", "stuck"):
            plan.abandon_at = at + self._wall(rng.uniform(10, 120))
        if rng.random() < 0.05:
            plan.transient_error_at = at + self._wall(rng.uniform(5, 120))
        self._schedule(at + self._wall(rng.uniform(5, 30)), "access", key)

    def _autopilot_access(self, session: _Session, at: datetime) -> None:
        plan = session.plan
        if plan is not None and plan.abandon_at is not None and at >= plan.abandon_at:
            return  # the client walked away: no more accesses, the idle timeout will come
        rng = self._rng
        self._touch(session, at, rng.randint(2_000, 60_000), rng.randint(20_000, 2_000_000))
        if (
            plan is not None
            and plan.transient_error_at is not None
            and at >= plan.transient_error_at
        ):
            session.fields["error"] = rng.choice(_ERROR_MESSAGES)
            plan.transient_error_at = None
        self._schedule(at + self._wall(rng.uniform(5, 30)), "access", session.key)

    def _autopilot_end(self, session: _Session, at: datetime) -> None:
        plan = session.plan
        if plan is not None and plan.fate == "error":
            session.fields["error"] = plan.error_message
            self._close(session, "error", "error", at)
        else:
            self._close(session, "closed", "manual", at)

    def _start_stuck_sessions(self, now: datetime) -> None:
        """Sessions the platform failed to close, already overdue when the account starts.

        Backdated in real minutes (not divided by speed): the exporter judges overdue
        sessions against wall-clock limits.
        """
        rng = self._rng
        shapes = (
            # (created minutes ago, last access minutes ago, idle, max, browser)
            (47, 41, 3, 15, "chromium"),
            (95, 88, 5, 30, "chrome"),
            (9, 8, 3, 15, "chromium"),  # overdue by idle only, by max_duration soon after
        )
        for created_ago, accessed_ago, idle, longest, browser in shapes:
            fields = {
                "created_at": now - timedelta(minutes=created_ago),
                "last_accessed_at": now - timedelta(minutes=accessed_ago),
                "idle_timeout_minutes": idle,
                "max_duration_minutes": longest,
                "browser_type": browser,
                "proxies": rng.random() < 0.5,
                "network_request_bytes": rng.randint(10_000, 500_000),
                "network_response_bytes": rng.randint(1_000_000, 50_000_000),
            }
            key = self._create(fields, False, now)
            self._sessions[key].plan = _Plan(fate="stuck")
