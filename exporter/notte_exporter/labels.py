"""Bounded label values: what the API may send must never grow a metric's cardinality or size.

Known values are always present (so dashboards and alerts see zeros rather than gaps); a
few values the API may add later are kept as they come, so a new browser type shows up
under its own name; anything past that budget, or anything that does not look like an
identifier, or that holds a secret the redaction step knows, is folded into ``other``.

Free text that names one thing (a session id, the plan and period of a usage report) cannot
be folded, so ``text_label`` bounds its length instead: redacted first (a cut through a key
would leave a piece the redaction no longer recognises), on one line, and at most
``LABEL_VALUE_LIMIT`` characters. A value that had to be cut ends in a digest of the whole,
so two long values that begin alike stay two series. Every label value that comes from the
API passes through one of the two.
"""

from __future__ import annotations

import hashlib
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

# Room for any id the API uses (UUIDs are 36) with plenty to spare.
LABEL_VALUE_LIMIT = 128
_CUT = "\u2026"
_DIGEST_BYTES = 6


def text_label(raw: str, redact: Callable[[str], str]) -> str:
    """Free text from the API as a label value: redacted, on one line, bounded in length."""
    text = " ".join(redact(raw).split())
    if len(text) <= LABEL_VALUE_LIMIT:
        return text
    digest = hashlib.blake2b(text.encode(), digest_size=_DIGEST_BYTES).hexdigest()
    return f"{text[: LABEL_VALUE_LIMIT - len(_CUT) - len(digest)]}{_CUT}{digest}"


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
