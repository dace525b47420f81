"""Structured logging (logfmt or JSON) that cannot leak the API key.

Redaction is defence in depth: no code path formats the key into a message, and should one
ever do so (an exception text quoting a header, say), the filter passes the final message and
any traceback through the process's one redaction step (``redaction``) before any handler
writes the line, whichever the format.

A line may carry structured fields besides its message, passed as
``log.info(msg, extra={"fields": {...}})``: logfmt and JSON write the same fields after
``msg`` (JSON keeps numbers as numbers), so machines need not parse the prose. The names
``ts``, ``level``, ``logger`` and ``msg`` are the line's own and cannot be overridden.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from notte_exporter.redaction import REDACTED

__all__ = ["REDACTED", "JsonFormatter", "LogfmtFormatter", "SecretFilter", "configure"]


class SecretFilter(logging.Filter):
    """Passes a record's final message and traceback through ``redact``."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._redact(record.getMessage()), None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {
                key: self._redact(value) if isinstance(value, str) else value
                for key, value in fields.items()
            }
        if record.exc_info:
            # Render the traceback now, so that it is redacted like everything else.
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, self._redact(text)
        elif record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": _timestamp(record),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    extra = getattr(record, "fields", None)
    if isinstance(extra, dict):
        fields.update({key: value for key, value in extra.items() if key not in fields})
    if record.exc_text:
        fields["exc"] = record.exc_text
    return fields


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(
            f"{key}={_logfmt_value(_text(value))}" for key, value in _fields(record).items()
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _logfmt_value(value: str) -> str:
    if value and not any(char in value for char in ' ="\\\n\t'):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def configure(
    level: str,
    fmt: str,
    redact: Callable[[str], str],
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the package's logs (and httpx's warnings) to ``stream`` in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    handler.addFilter(SecretFilter(redact))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request at info, with full URLs; that is debugging detail here.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, root.level))
    return handler
