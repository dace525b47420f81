"""Pydantic models of the Notte API's session listing, tolerant where the API may drift.

Tolerance is deliberate and narrow: unknown fields are ignored, enum-like fields (``status``,
``browser_type``, ``close_reason``) are kept as plain strings so that a new value never
rejects a session, optional fields may be missing or null, naive timestamps are read as UTC
and ``duration`` (ISO 8601) is parsed when needed, falling back on the timestamps. Fields
the exporter cannot do without (``session_id``, ``status``, ``created_at``) stay required,
so that a broken item is reported instead of being turned into made-up numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

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


class Session(BaseModel):
    """One ``SessionResponse``, reduced to the fields the exporter uses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    session_id: str = Field(min_length=1)
    status: str
    created_at: datetime
    last_accessed_at: datetime | None = None
    closed_at: datetime | None = None
    idle_timeout_minutes: int = DEFAULT_IDLE_TIMEOUT_MINUTES
    max_duration_minutes: int = DEFAULT_MAX_DURATION_MINUTES
    # Kept as sent and parsed only for ended sessions (lifetime()): most sessions listed are
    # live and never need it, and a malformed duration must not cost the whole session.
    duration: str | None = None
    browser_type: str = "chromium"
    close_reason: str | None = None
    error: str | None = None
    proxies: bool = False
    solve_captchas: bool | None = None
    use_file_storage: bool = False
    web_bot_auth: bool = False
    headless: bool = True
    network_request_bytes: int = 0
    network_response_bytes: int = 0

    @field_validator(*_NULL_MEANS_DEFAULT, mode="before")
    @classmethod
    def _null_means_default(cls, value: Any, info: Any) -> Any:
        return _NULL_MEANS_DEFAULT[info.field_name] if value is None else value

    @field_validator("created_at", "last_accessed_at", "closed_at")
    @classmethod
    def _naive_means_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        # The stdlib's UTC makes the per-session arithmetic of every poll several times
        # cheaper than pydantic's own tzinfo (measured by bench/).
        return value.astimezone(UTC)

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


class SessionPage(BaseModel):
    """One page of ``GET /sessions``. Items stay raw: each is validated on its own."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    items: list[Any]
    page: int
    page_size: int
    has_next: bool


class InvalidItem(BaseModel):
    """A session item that could not be read, kept only for counting and logging."""

    session_id: str | None
    problem: str


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
