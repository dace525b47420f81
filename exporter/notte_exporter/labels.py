"""Bounded label values: what the API may send must never grow a metric's cardinality.

Known values are always present (so dashboards and alerts see zeros rather than gaps); a
few values the API may add later are kept as they come, so a new browser type shows up
under its own name; anything past that budget, or anything that does not look like an
identifier, or that holds a secret the redaction step knows, is folded into ``other``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable

OTHER = "other"
UNKNOWN = "unknown"

BROWSER_TYPES = ("chromium", "chrome", "firefox", "chrome-nightly", "chrome-turbo")
FEATURES = ("proxies", "solve_captchas", "file_storage", "web_bot_auth", "headful")
OVERDUE_REASONS = ("max_duration", "idle_timeout")
CLOSED_STATUSES = ("closed", "error", "timed_out", UNKNOWN)
CLOSE_REASONS = ("manual", "idle_timeout", "max_duration", "error", UNKNOWN)

_IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


class BoundedLabel:
    """Maps raw values to label values from a set that can only grow by ``extra`` entries."""

    def __init__(
        self,
        known: Iterable[str],
        extra: int = 10,
        *,
        redact: Callable[[str], str] = str,
    ) -> None:
        self._redact = redact
        self._known = tuple(known)
        self._allowed = set(self._known)
        self._extra_budget = extra
        self._extras: list[str] = []
        self._overflowed = False
        self._lock = threading.Lock()

    def __call__(self, raw: str | None) -> str:
        if raw is None:
            raw = UNKNOWN
        if raw in self._allowed:
            return raw
        with self._lock:
            if raw in self._allowed:
                return raw
            if (
                len(self._extras) < self._extra_budget
                and _IDENTIFIER.match(raw)
                and self._redact(raw) == raw
            ):
                self._extras.append(raw)
                self._allowed.add(raw)
                return raw
            self._overflowed = True
        return OTHER

    def values(self) -> tuple[str, ...]:
        """Every value that may appear, known ones first, in a stable order."""
        with self._lock:
            return self._known + tuple(self._extras) + ((OTHER,) if self._overflowed else ())


def closed_status(raw: str) -> str:
    """Final status label of an ended session; statuses the API adds later become unknown."""
    return raw if raw in CLOSED_STATUSES else UNKNOWN


def close_reason(raw: str | None) -> str:
    return raw if raw in CLOSE_REASONS else UNKNOWN
