"""Pydantic models of the Notte API's session listing, tolerant where the API may drift.

Tolerance is deliberate and narrow: unknown fields are ignored, enum-like fields (``status``,
``browser_type``, ``close_reason``) are kept as plain strings so that a new value never
rejects a session, optional fields may be missing or null, naive timestamps are read as UTC
and ``duration`` (ISO 8601) is parsed when needed, falling back on the timestamps. Fields
the exporter cannot do without (``session_id``, ``status``, ``created_at``) stay required,
so that a broken item is reported instead of being turned into made-up numbers.

A page is validated from its bytes in one call (``parse_page``: pydantic-core decodes and
validates together, cheaper than ``json.loads`` then a model per item), with one Python hook
per session (``_normalise``) for what pydantic cannot say declaratively. Only a page that
fails as a whole is decoded again and read item by item, so that one broken item costs
only itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

# Statuses that mean a session is over. A status the API adds later (as it once added
# "authenticating") is taken for a live one unless the session also has a closed_at.
END_STATUSES = frozenset({"closed", "error", "timed_out"})

# pydantic reads ISO 8601 durations (PT41.286072S, P1DT5S) as the API sends them.
_ISO8601_DURATION = TypeAdapter(timedelta)

DEFAULT_IDLE_TIMEOUT_MINUTES = 3
DEFAULT_MAX_DURATION_MINUTES = 15

_NULL_MEANS_DEFAULT = {
    "idle_timeout_minutes": DEFAULT_IDLE_TIMEOUT_MINUTES,
    "max_duration_minutes": DEFAULT_MAX_DURATION_MINUTES,
    "browser_type": "chromium",
    "proxies": False,
    "use_file_storage": False,
    "web_bot_auth": False,
    "headless": True,
    "network_request_bytes": 0,
    "network_response_bytes": 0,
}


class _NullAllowed:
    """Lets a field validate ``null`` as None, for ``Session._normalise`` to replace.

    The static type stays the field's own (``int``, ``bool``, ``str``): after validation a
    Session never holds None there.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.nullable_schema(handler(source))


_NULLABLE = _NullAllowed()


_TIMESTAMPS = ("created_at", "last_accessed_at", "closed_at")


class Session(BaseModel):
    """One ``SessionResponse``, reduced to the fields the exporter uses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    session_id: str = Field(min_length=1)
    status: str
    created_at: datetime
    last_accessed_at: datetime | None = None
    closed_at: datetime | None = None
    idle_timeout_minutes: Annotated[int, _NULLABLE] = DEFAULT_IDLE_TIMEOUT_MINUTES
    max_duration_minutes: Annotated[int, _NULLABLE] = DEFAULT_MAX_DURATION_MINUTES
    # Kept as sent and parsed only for ended sessions (lifetime()): most sessions listed are
    # live and never need it, and a malformed duration must not cost the whole session.
    duration: str | None = None
    browser_type: Annotated[str, _NULLABLE] = "chromium"
    close_reason: str | None = None
    error: str | None = None
    proxies: Annotated[bool, _NULLABLE] = False
    solve_captchas: bool | None = None
    use_file_storage: Annotated[bool, _NULLABLE] = False
    web_bot_auth: Annotated[bool, _NULLABLE] = False
    headless: Annotated[bool, _NULLABLE] = True
    network_request_bytes: Annotated[int, _NULLABLE] = 0
    network_response_bytes: Annotated[int, _NULLABLE] = 0

    @model_validator(mode="after")
    def _normalise(self) -> Session:
        """Null means the default; naive timestamps are UTC. One call per session, not one
        per field: Python hooks are most of what validation costs (measured by bench/)."""
        # Still inside validation: the frozen model is not out in the world yet.
        fields = self.__dict__
        for name, default in _NULL_MEANS_DEFAULT.items():
            if fields[name] is None:
                fields[name] = default
        for name in _TIMESTAMPS:
            value = fields[name]
            if value is not None:
                # The stdlib's UTC makes the per-session arithmetic of every poll several
                # times cheaper than pydantic's own tzinfo (measured by bench/).
                fields[name] = (
                    value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
                )
        return self

    @property
    def is_live(self) -> bool:
        return self.status not in END_STATUSES and self.closed_at is None

    @property
    def last_activity(self) -> datetime:
        """When the session was last used; a session never accessed counts from its start."""
        return self.last_accessed_at or self.created_at

    def lifetime(self) -> timedelta | None:
        """How long an ended session lived, from ``duration`` or else its timestamps."""
        if self.duration is not None:
            try:
                lifetime = _ISO8601_DURATION.validate_python(self.duration)
            except ValidationError:
                lifetime = None  # fall back on the timestamps
            if lifetime is not None and lifetime >= timedelta(0):
                return lifetime
        if self.closed_at is not None:
            return max(self.closed_at - self.created_at, timedelta(0))
        return None


class _TypedPage(BaseModel):
    """One page of ``GET /sessions`` whose every item is a valid session: the fast path."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    items: list[Session]
    page: int
    page_size: int
    has_next: bool


class _RawPage(BaseModel):
    """The same page with its items left raw, for reading them one by one."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    items: list[Any]
    page: int
    page_size: int
    has_next: bool


_TYPED_PAGE = TypeAdapter(_TypedPage)


class InvalidItem(BaseModel):
    """A session item that could not be read, kept only for counting and logging."""

    session_id: str | None
    problem: str


@dataclass(frozen=True)
class SessionPage:
    """One page of ``GET /sessions``, read: its valid sessions and its unreadable items."""

    sessions: list[Session]
    invalid: list[InvalidItem]
    has_next: bool

    @property
    def is_empty(self) -> bool:
        return not self.sessions and not self.invalid


class NotJsonError(ValueError):
    """The body is not JSON at all."""


def parse_page(content: bytes) -> SessionPage:
    """Read a page from its bytes; raises ``NotJsonError``, or ValidationError for a non-listing.

    Broken items are returned as ``InvalidItem``s, never raised: the rest of the page counts.
    """
    try:
        page = _TYPED_PAGE.validate_json(content)
    except ValidationError:
        pass  # the page, or some item of it, is broken: find out which, item by item
    else:
        return SessionPage(page.items, [], page.has_next)
    try:
        body = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise NotJsonError from None
    raw = _RawPage.model_validate(body)
    sessions: list[Session] = []
    invalid: list[InvalidItem] = []
    for item in raw.items:
        parsed = parse_session(item)
        if isinstance(parsed, Session):
            sessions.append(parsed)
        else:
            invalid.append(parsed)
    return SessionPage(sessions, invalid, raw.has_next)


def parse_session(raw: Any) -> Session | InvalidItem:
    """Validate one item; a broken item is returned as ``InvalidItem`` instead of raising."""
    try:
        return Session.model_validate(raw)
    except ValidationError as exc:
        session_id = raw.get("session_id") if isinstance(raw, dict) else None
        return InvalidItem(
            session_id=session_id if isinstance(session_id, str) else None,
            problem=f"{first_problem(exc, 'item')} ({exc.error_count()} problem(s))",
        )


def first_problem(exc: ValidationError, whole: str) -> str:
    """The first validation error as ``field.path: message`` (``whole`` when it has no path)."""
    first = exc.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc']) or whole}: {first['msg']}"
