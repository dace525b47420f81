"""The one redaction step every text leaving the process passes through.

No code path formats the API key into a message, a page or a label; this is the defence in
depth for when one does anyway (an exception quoting a header, an API echoing the
credentials back). It removes every key the process has ever held, valid or not, and any
``Bearer <token>``, so that even a key the exporter never knew (a typo'd variable in a
header dump, say) does not leave whole. Log lines in both formats, the pages, metric label
values, ``--once`` output and exit messages all go through ``Secrets.redact``.
"""

from __future__ import annotations

import re
import threading

REDACTED = "<redacted>"

_UNPRINTABLE = re.compile(r"[^\x21-\x7e]+")
_BEARER = re.compile(r"(?i)\bBearer\s+(?!<redacted>)\S+")
# Pieces of a malformed key shorter than this are too common to remove from every text
# (a line break splits "sk-SECRET-123\nab" into a key-like piece and "ab").
_MIN_FRAGMENT = 4
# Rotations are rare; a bound keeps a file rewritten in a loop from growing memory.
_MAX_SECRETS = 256


class Secrets:
    """Every key value the process has held, and the function that removes them from text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()

    def remember(self, value: str) -> None:
        """Keep ``value`` (and, for a malformed one, each printable run of it) for redaction."""
        pieces = {value.strip(), *_UNPRINTABLE.split(value)}
        fresh = [p for p in pieces if len(p) >= _MIN_FRAGMENT and p not in self._values]
        if not fresh:
            return
        with self._lock:
            # Longest first, so that a key is replaced whole before any piece of it.
            merged = sorted({*self._values, *fresh}, key=len, reverse=True)
            self._values = tuple(merged[:_MAX_SECRETS])

    def values(self) -> tuple[str, ...]:
        return self._values

    def redact(self, text: str) -> str:
        for secret in self._values:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _BEARER.sub(f"Bearer {REDACTED}", text)
