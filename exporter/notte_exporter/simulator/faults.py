"""Per-request fault injection for the simulated Notte API.

A test pushes `Fault`s onto the server's `FaultQueue`; each request takes the first queued
fault whose `path` matches its URL path (a prefix, or the whole path with `exact=True`),
FIFO, and a fault with `times=n` serves the next n matching requests. Requests with no
matching fault get the normal response.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any, Final, Literal

__all__ = ["Fault", "FaultKind", "FaultQueue", "TricklePart", "default_error_body"]

FaultKind = Literal[
    "status", "latency", "malformed_json", "truncated", "reset", "hang", "payload", "trickle"
]
# Which part of an answer a trickle sends slowly: from the status line on, or the body only.
TricklePart = Literal["headers", "body"]

_NOTTE_BODIES: Final[dict[int, dict[str, str]]] = {
    401: {"message": "Authentication failed. Please check your credentials."},
    429: {"message": "Rate limit exceeded", "detail": "Please wait before making more requests"},
    # The documented text has an en dash.
    529: {"message": "Cluster overloaded \u2013 Too many sessions"},
}

# A page cut off mid-item: valid UTF-8, invalid JSON.
_MALFORMED_JSON: Final = b'{"items": [{"session_id": "2f0c1e8a", "status": "act'
_TRUNCATED_BODY: Final = (
    b'{"items": [{"session_id": "2f0c1e8a-5d4b-4c3e-9a1f-0b6e7d8c9a10", "status": "active", '
)


def default_error_body(code: int) -> dict[str, str]:
    """The body the real API sends for `code` where known, else FastAPI's `{"detail": ...}`."""
    if code in _NOTTE_BODIES:
        return dict(_NOTTE_BODIES[code])
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    return {"detail": phrase}


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour; build it with the class methods, not the constructor."""

    kind: FaultKind
    status_code: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    seconds: float = 0.0
    release: threading.Event | None = None
    part: TricklePart = "body"
    path: str | None = None
    exact: bool = False
    times: int = 1
    # Only requests made with the account's named key of this name (None: any request).
    key: str | None = None

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("a fault must apply to at least one request (times >= 1)")

    def matches(self, path: str, key: str | None = None) -> bool:
        """Whether a request for URL `path`, made with the named key `key`, suffers this fault."""
        if self.key is not None and self.key != key:
            return False
        if self.path is None:
            return True
        return path == self.path if self.exact else path.startswith(self.path)

    def for_key(self, name: str) -> Fault:
        """This fault, for the requests made with the named key `name` only."""
        return replace(self, key=name)

    @classmethod
    def status(
        cls,
        code: int,
        body: dict[str, Any] | list[Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        content_type: str | None = None,
        path: str | None = None,
        exact: bool = False,
        times: int = 1,
    ) -> Fault:
        """Answer with `code`, `body` (default: the API's body for that code) and `headers`.

        dict/list bodies are sent as JSON, str as text/plain, bytes as they are; `content_type`
        overrides (e.g. "text/html" for a proxy's error page).
        """
        return cls(
            kind="status",
            status_code=code,
            body=default_error_body(code) if body is None else body,
            headers=dict(headers or {}),
            content_type=content_type,
            path=path,
            exact=exact,
            times=times,
        )

    @classmethod
    def latency(
        cls, seconds: float, *, path: str | None = None, exact: bool = False, times: int = 1
    ) -> Fault:
        """Wait `seconds` (real time), then answer normally."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        return cls(kind="latency", seconds=seconds, path=path, exact=exact, times=times)

    @classmethod
    def trickle(
        cls,
        seconds: float,
        *,
        part: TricklePart = "body",
        path: str | None = None,
        exact: bool = False,
        times: int = 1,
    ) -> Fault:
        """Answer normally, but a byte at a time, `seconds` apart (real time): from the status
        line on (`part="headers"`), or the body only. Each byte comes well within any read timeout;
        the whole answer takes as long as its length says. Ends when the client hangs up."""
        if seconds <= 0:
            raise ValueError("a trickle needs a delay > 0 between bytes")
        return cls(kind="trickle", seconds=seconds, part=part, path=path, exact=exact, times=times)

    @classmethod
    def redirect(
        cls,
        location: str,
        *,
        status: int = 302,
        path: str | None = None,
        exact: bool = False,
        times: int = 1,
    ) -> Fault:
        """Answer `status` (a 3xx) with `Location: location` and an empty body."""
        return cls.status(status, b"", {"Location": location}, path=path, exact=exact, times=times)

    @classmethod
    def malformed_json(
        cls, *, path: str | None = None, exact: bool = False, times: int = 1
    ) -> Fault:
        """Answer 200 application/json with a complete body that is not valid JSON."""
        return cls(kind="malformed_json", body=_MALFORMED_JSON, path=path, exact=exact, times=times)

    @classmethod
    def truncated(
        cls,
        body: bytes | None = None,
        *,
        path: str | None = None,
        exact: bool = False,
        times: int = 1,
    ) -> Fault:
        """Announce a longer Content-Length than the body sent, then close the connection."""
        return cls(
            kind="truncated",
            body=_TRUNCATED_BODY if body is None else body,
            path=path,
            exact=exact,
            times=times,
        )

    @classmethod
    def reset(cls, *, path: str | None = None, exact: bool = False, times: int = 1) -> Fault:
        """Close the connection (TCP reset) without sending any response."""
        return cls(kind="reset", path=path, exact=exact, times=times)

    @classmethod
    def hang(
        cls,
        release: threading.Event | None = None,
        *,
        path: str | None = None,
        exact: bool = False,
        times: int = 1,
    ) -> Fault:
        """Hold the request until `release` is set (then answer normally) or the server stops.

        Without `release` the request hangs until the server stops (or the client gives up).
        """
        return cls(kind="hang", release=release, path=path, exact=exact, times=times)

    @classmethod
    def payload(
        cls,
        obj: Any,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        path: str | None = None,
        exact: bool = False,
        times: int = 1,
    ) -> Fault:
        """Answer with an arbitrary JSON document (e.g. a malformed item, has_next stuck true)."""
        return cls(
            kind="payload",
            status_code=status,
            body=obj,
            headers=dict(headers or {}),
            path=path,
            exact=exact,
            times=times,
        )


@dataclass
class _Pending:
    fault: Fault
    remaining: int


class FaultQueue:
    """Thread-safe FIFO of pending faults, consumed by matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []

    def push(self, *faults: Fault) -> None:
        """Queue faults; each serves the next `fault.times` requests matching its path."""
        with self._lock:
            self._pending.extend(_Pending(fault, fault.times) for fault in faults)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def take(self, path: str, key: str | None = None) -> Fault | None:
        """The fault the request for `path` with the named key `key` must suffer, if any
        (uses it up once)."""
        with self._lock:
            for index, entry in enumerate(self._pending):
                if entry.fault.matches(path, key):
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        del self._pending[index]
                    return entry.fault
            return None

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return [entry.fault for entry in self._pending]

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)
