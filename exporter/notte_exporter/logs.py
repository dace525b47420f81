"""Structured logging (logfmt or JSON) that cannot leak the API key.

Redaction is defence in depth: no code path formats the key into a message, and should one
ever do so (an exception text quoting a header, say), the filter replaces it before any
handler writes the line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

REDACTED = "<redacted>"


class SecretFilter(logging.Filter):
    """Replaces every known secret in a record's final message with ``<redacted>``."""

    def __init__(self, secrets: Callable[[], list[str]]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for secret in self._secrets():
            if secret and secret in message:
                message = message.replace(secret, REDACTED)
        record.msg, record.args = message, None
        if record.exc_info:
            # Tracebacks are only rendered at debug level; render them now so they are
            # redacted like everything else.
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self._secrets():
                if secret:
                    text = text.replace(secret, REDACTED)
            record.exc_info, record.exc_text = None, text
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, str]:
    fields = {
        "ts": _timestamp(record),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    if record.exc_text:
        fields["exc"] = record.exc_text
    return fields


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in _fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record))


def _logfmt_value(value: str) -> str:
    if value and not any(char in value for char in ' ="\\\n\t'):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def configure(
    level: str,
    fmt: str,
    secrets: Callable[[], list[str]],
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the package's logs (and httpx's warnings) to ``stream`` in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request at info, with full URLs; that is debugging detail here.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, root.level))
    return handler
