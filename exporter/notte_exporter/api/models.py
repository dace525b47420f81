"""What the Notte API answers (the session listing, one session, the usage report), read
tolerantly where the API may drift, and fast.

Tolerance is deliberate and narrow: unknown fields are ignored, enum-like fields (``status``,
``browser_type``, ``close_reason``) are kept as plain strings so that a new value never
rejects a session, optional fields may be missing or null (both mean the default), naive
timestamps are read as UTC and ``duration`` (ISO 8601) is parsed when needed, falling back
on the timestamps. Fields the exporter cannot do without (``session_id``, ``status``,
``created_at``) stay required, and a value of the wrong type is an error, so that a broken
item is reported instead of being turned into made-up numbers.

Numbers and times are bounded where they are read (by pydantic-core, with the rest), so that
no arithmetic on them can fail later: a byte total is a non-negative integer below 2**63 (any
64-bit counter; as a float, a sum of many stays finite), a time limit lies within its
documented range (idle timeout 0-30 minutes, max duration 0-1440), and a timestamp lies in
the years 1970-2199, far enough from datetime's own limits (years 1 and 9999) that adding a
lifetime or subtracting a horizon never overflows. An item outside them is invalid like any
broken item: it costs only itself. ``duration`` is read only for ended sessions
(``lifetime``), and one past ``LONGEST_LIFETIME`` is not believed.

Speed is deliberate too, because every poll reads every live session. A page is validated
from its bytes in one call (``parse_page``, ``parse_live_page``) into plain dicts
(``Session``, or for the live listing ``LiveSession``, which leaves out what only an ended
session needs: TypedDicts):
pydantic-core decodes, validates and fills defaults in Rust, with no Python code per session
or per field, which costs about what ``json.loads`` of the same bytes does (model or
dataclass instances, or a Python hook per session, were measured to cost more:
docs/benchmarks.md).
Only a naive timestamp takes a Python step (``_as_utc``). Aware ones keep the tzinfo
pydantic-core gives them; it hands out one shared instance for UTC (``API_UTC``), and a poll
that takes its own "now" in that instance compares timestamps field by field instead of
through ``utcoffset()`` on both sides, which is much cheaper (correct either way: only the
speed depends on sharing it). Only a page that fails as a whole is decoded again and read
item by item, so that one broken item costs only itself; a page of more items than the API
ever puts on one (``MAX_PAGE_SIZE``) is refused instead, before any of them is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    GetCoreSchemaHandler,
    NaiveDatetime,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import CoreSchema, core_schema, from_json

# pydantic reads TypedDicts of the typing module only from Python 3.12 on.
from typing_extensions import TypedDict

# Statuses that mean a session is over. A status the API adds later (as it once added
# "authenticating") is taken for a live one unless the session also has a closed_at.
END_STATUSES = frozenset({"closed", "error", "timed_out"})

# pydantic reads ISO 8601 durations (PT41.286072S, P1DT5S) as the API sends them.
_ISO8601_DURATION = TypeAdapter(timedelta)

DEFAULT_IDLE_TIMEOUT_MINUTES = 3
DEFAULT_MAX_DURATION_MINUTES = 15
# The documented limits: a session's own settings may not exceed them.
LONGEST_IDLE_TIMEOUT_MINUTES = 30
LONGEST_MAX_DURATION_MINUTES = 1440
# Far past any documented limit (a day), so that a platform that fails to close a session is
# still believed; a reported duration beyond it is noise, and the timestamps tell instead.
LONGEST_LIFETIME = timedelta(days=366)

# A count or a byte total: never negative, and small enough to render as a float.
Count = Annotated[int, Field(ge=0, lt=2**63)]

# The API's largest page_size: a page of more items is refused before any item is kept.
MAX_PAGE_SIZE = 100


def _utc_of_the_api() -> tzinfo:
    parsed = TypeAdapter(AwareDatetime).validate_json(b'"1970-01-01T00:00:00Z"')
    assert parsed.tzinfo is not None
    return parsed.tzinfo


# The tzinfo pydantic-core gives timestamps sent in UTC (``Z`` or ``+00:00``): equal to
# datetime.UTC, and the same object every time. Naive timestamps get it too.
API_UTC = _utc_of_the_api()


def in_api_utc(moment: datetime) -> datetime:
    """``moment`` (aware) in the API's UTC instance, for cheap comparison with timestamps."""
    return moment.astimezone(API_UTC)


def _as_utc(naive: datetime) -> datetime:
    return naive.replace(tzinfo=API_UTC)


_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)

# Aware first (the common case, all in Rust); a naive timestamp is read as UTC. Both are
# bounded in Rust too (see the module's docstring for why).
Timestamp = Annotated[
    Annotated[AwareDatetime, Field(ge=_EARLIEST, lt=_LATEST)]
    | Annotated[
        NaiveDatetime,
        Field(ge=_EARLIEST.replace(tzinfo=None), lt=_LATEST.replace(tzinfo=None)),
        AfterValidator(_as_utc),
    ],
    Field(union_mode="left_to_right"),
]


class NullMeans:
    """``null`` validates as ``default`` (the field's own); any other value must be of its type.

    Declared in pydantic-core's terms (the value is checked as ``T | None``, then a None
    falls back on the default), so that it costs no Python call per field. Bounds declared
    before it (``Annotated[int, Field(ge=0), NullMeans(0)]``) are checked in the first step;
    the second only tells a None from a value, so it checks the plain type, not them again.
    """

    def __init__(self, default: object) -> None:
        self._default = default

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.chain_schema(
            [
                core_schema.nullable_schema(handler(source)),
                core_schema.with_default_schema(
                    handler.generate_schema(source), default=self._default, on_error="default"
                ),
            ]
        )


class LiveSession(TypedDict):
    """One ``SessionResponse`` of the live listing, reduced to what the exporter reads of a
    live session; every key is present.

    A plain dict (see the module's docstring for why); ``is_live`` and ``last_activity``
    are what a class would have had as properties. Read from every page of every poll, so
    it leaves out what only an ended session needs (``Session``): the duration (a string
    per session) and the close reason took a tenth of the time to validate a page.
    """

    session_id: Annotated[str, Field(min_length=1)]
    status: str
    created_at: Timestamp
    last_accessed_at: Annotated[Timestamp | None, Field(default=None)]
    closed_at: Annotated[Timestamp | None, Field(default=None)]
    # Bounds before NullMeans, so that they are part of the schema it wraps (checked in Rust).
    idle_timeout_minutes: Annotated[
        int,
        Field(ge=0, le=LONGEST_IDLE_TIMEOUT_MINUTES),
        NullMeans(DEFAULT_IDLE_TIMEOUT_MINUTES),
        Field(default=DEFAULT_IDLE_TIMEOUT_MINUTES),
    ]
    max_duration_minutes: Annotated[
        int,
        Field(ge=0, le=LONGEST_MAX_DURATION_MINUTES),
        NullMeans(DEFAULT_MAX_DURATION_MINUTES),
        Field(default=DEFAULT_MAX_DURATION_MINUTES),
    ]
    browser_type: Annotated[str, NullMeans("chromium"), Field(default="chromium")]
    error: Annotated[str | None, Field(default=None)]
    proxies: Annotated[bool, NullMeans(False), Field(default=False)]
    solve_captchas: Annotated[bool | None, Field(default=None)]
    use_file_storage: Annotated[bool, NullMeans(False), Field(default=False)]
    web_bot_auth: Annotated[bool, NullMeans(False), Field(default=False)]
    headless: Annotated[bool, NullMeans(True), Field(default=True)]
    network_request_bytes: Annotated[Count, NullMeans(0), Field(default=0)]
    network_response_bytes: Annotated[Count, NullMeans(0), Field(default=0)]


class Session(LiveSession):
    """One ``SessionResponse`` as the exporter reads it wherever it may have ended (the
    history, a lookup by id): with how long it lived and why it closed. ``lifetime`` is
    what a class would have had as a property."""

    # Kept as sent and parsed only for ended sessions (lifetime()), so that a malformed
    # duration does not cost the whole session.
    duration: Annotated[str | None, Field(default=None)]
    close_reason: Annotated[str | None, Field(default=None)]


def is_live(session: LiveSession) -> bool:
    return session["status"] not in END_STATUSES and session["closed_at"] is None


def last_activity(session: LiveSession) -> datetime:
    """When the session was last used; a session never accessed counts from its start."""
    return session["last_accessed_at"] or session["created_at"]


def lifetime(session: Session) -> timedelta | None:
    """How long an ended session lived, from ``duration`` or else its timestamps.

    Never negative, and a ``duration`` beyond ``LONGEST_LIFETIME`` is not believed, so that
    ``created_at + lifetime`` is always a date.
    """
    duration = session["duration"]
    if duration is not None:
        try:
            reported = _ISO8601_DURATION.validate_python(duration)
        except ValidationError:
            reported = None  # fall back on the timestamps
        if reported is not None and timedelta(0) <= reported <= LONGEST_LIFETIME:
            return reported
    closed_at = session["closed_at"]
    if closed_at is not None:
        return max(closed_at - session["created_at"], timedelta(0))
    return None


class _TypedPage(TypedDict):
    """One page of ``GET /sessions`` whose every item is a valid session: the fast path."""

    items: Annotated[list[Session], Field(max_length=MAX_PAGE_SIZE)]
    has_next: bool


class _LivePage(TypedDict):
    """The same, for the live listing: its items read as ``LiveSession``s."""

    items: Annotated[list[LiveSession], Field(max_length=MAX_PAGE_SIZE)]
    has_next: bool


class _RawPage(TypedDict):
    """The same page with its items left raw, for reading them one by one."""

    items: list[Any]
    has_next: bool


_RAW_PAGE = TypeAdapter(_RawPage)

# What a page's items are read as: the live listing's, or any session's.
Item = TypeVar("Item", LiveSession, Session)


@dataclass(frozen=True)
class InvalidItem:
    """A session item that could not be read, kept only for counting and logging."""

    session_id: str | None
    problem: str


@dataclass(frozen=True)
class SessionPage(Generic[Item]):
    """One page of ``GET /sessions``, read: its valid sessions and its unreadable items."""

    sessions: list[Item]
    invalid: list[InvalidItem]
    has_next: bool

    @property
    def is_empty(self) -> bool:
        return not self.sessions and not self.invalid


class NotJsonError(ValueError):
    """The body is not JSON at all, or nested deeper than the JSON parser goes; the
    message is the parser's, which never quotes the body."""


class TooManyItemsError(ValueError):
    """A page of more than ``MAX_PAGE_SIZE`` items: ``count``."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} items")
        self.count = count


class _Reader(Generic[Item]):
    """Reads pages and items as ``Item``s."""

    def __init__(self, page: TypeAdapter[Any], item: TypeAdapter[Item]) -> None:
        self._page = page
        self._item: TypeAdapter[Item] = item

    def page(self, content: bytes) -> SessionPage[Item]:
        try:
            page = self._page.validate_json(content)
        except ValidationError as exc:
            # Otherwise the page, or some item of it, is broken: find out which, item by
            # item. Not for a page too long to be one: that would hold every item at once.
            count = _items_over_the_cap(exc)
            if count is not None:
                raise TooManyItemsError(count) from None
        else:
            return SessionPage(page["items"], [], page["has_next"])
        try:
            # pydantic-core's parser, as above: it stops at a nesting depth no listing has
            # (where json.loads would raise RecursionError), and it is the faster one.
            body = from_json(content)
        except ValueError as exc:
            raise NotJsonError(str(exc)) from None
        raw = _RAW_PAGE.validate_python(body)
        sessions: list[Item] = []
        invalid: list[InvalidItem] = []
        for item in raw["items"]:
            parsed = self.item(item)
            if isinstance(parsed, InvalidItem):
                invalid.append(parsed)
            else:
                sessions.append(parsed)
        return SessionPage(sessions, invalid, raw["has_next"])

    def item(self, raw: Any) -> Item | InvalidItem:
        try:
            return self._item.validate_python(raw)
        except ValidationError as exc:
            session_id = raw.get("session_id") if isinstance(raw, dict) else None
            return InvalidItem(
                session_id=session_id if isinstance(session_id, str) else None,
                problem=f"{first_problem(exc, 'item')} ({exc.error_count()} problem(s))",
            )


_SESSIONS = _Reader(TypeAdapter(_TypedPage), TypeAdapter(Session))
_LIVE_SESSIONS = _Reader(TypeAdapter(_LivePage), TypeAdapter(LiveSession))


def _items_over_the_cap(exc: ValidationError) -> int | None:
    for error in exc.errors(include_url=False, include_input=False):
        if error["type"] == "too_long" and error["loc"] == ("items",):
            return int(error.get("ctx", {}).get("actual_length") or MAX_PAGE_SIZE + 1)
    return None


def parse_page(content: bytes) -> SessionPage[Session]:
    """Read a page from its bytes; raises ``NotJsonError``, ``TooManyItemsError``, or
    ValidationError for a non-listing.

    Broken items are returned as ``InvalidItem``s, never raised: the rest of the page counts.
    """
    return _SESSIONS.page(content)


def parse_live_page(content: bytes) -> SessionPage[LiveSession]:
    """The same for a page of the live listing, whose items are read as ``LiveSession``s:
    what an ended session adds is neither read nor checked."""
    return _LIVE_SESSIONS.page(content)


def parse_session(raw: Any) -> Session | InvalidItem:
    """Validate one decoded item; a broken item is returned as ``InvalidItem``, not raised."""
    return _SESSIONS.item(raw)


def first_problem(exc: ValidationError, whole: str) -> str:
    """The first validation error as ``field.path: message`` (``whole`` when it has no path)."""
    first = exc.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc']) or whole}: {first['msg']}"


class UsageReport(BaseModel):
    """``UsageResponse``, the answer of ``GET /usage``: tolerant of additions, strict about
    omissions.

    Unknown fields are ignored, so the API may add to the report at any time; every field
    the exporter exposes is required, so a report missing one fails that read with a reason
    that names the field (``total_cost: Field required``) instead of exposing a made-up 0.
    Numbers are bounded as the sessions' are (counts as ``Count``, amounts finite), so that a
    report either renders whole or fails that read, never the sessions.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    plan_type: str
    period: str
    session_count: Count
    function_count: Count
    browser_usage_cost: FiniteFloat
    proxy_usage_cost: FiniteFloat
    llm_usage_cost: FiniteFloat
    function_usage_cost: FiniteFloat
    total_cost: FiniteFloat
    subscription_limit_amount: FiniteFloat
    topup_limit_amount: FiniteFloat
    subscription_balance_amount: FiniteFloat
    topup_balance_amount: FiniteFloat
    balance_amount: FiniteFloat
    is_usage_limit_exceeded: bool
