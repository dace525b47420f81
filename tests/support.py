"""Helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notte_exporter.api.models import InvalidItem, Session, parse_session
from notte_exporter.daemon import Exporter

API_KEY = "sk-test-7f3c9b2e1d4a"


def sample(exporter: Exporter, name: str, **labels: str) -> float | None:
    """One sample of the exporter's registry, as a scrape would see it."""
    return exporter.registry.get_sample_value(name, labels)


def session_json(session_id: str = "s-1", **fields: Any) -> dict[str, Any]:
    """A SessionResponse as the API sends it, with overridable fields."""
    body: dict[str, Any] = {
        "session_id": session_id,
        "idle_timeout_minutes": 3,
        "max_duration_minutes": 15,
        "created_at": "2026-05-01T10:00:00Z",
        "last_accessed_at": "2026-05-01T10:00:00Z",
        "closed_at": None,
        "duration": "PT0S",
        "status": "active",
        "browser_type": "chromium",
        "network_request_bytes": 0,
        "network_response_bytes": 0,
        "timeout_minutes": 3,
    }
    body.update(fields)
    return body


def at(text: str) -> datetime:
    """An aware UTC datetime from a compact ISO string."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def parse_one(session_id: str = "s-1", **fields: Any) -> Session:
    """A valid Session, as the exporter reads it from the API."""
    parsed = parse_session(session_json(session_id, **fields))
    assert not isinstance(parsed, InvalidItem), parsed
    return parsed


def closed(exporter: Exporter, browser: str, status: str, reason: str) -> float | None:
    """``notte_sessions_closed_total`` of one browser type, final status and close reason."""
    return sample(
        exporter,
        "notte_sessions_closed_total",
        browser_type=browser,
        status=status,
        close_reason=reason,
    )


# Things that are no key file, each with what the exporter says it is.
NOT_KEY_FILES = [
    ("fifo", "is a FIFO, not a regular file"),
    ("directory", "is a directory, not a regular file"),
    ("device", "is a character device, not a regular file"),
    ("large", "is larger than 64 KiB"),
]


def make_not_a_key_file(path: Path, kind: str) -> None:
    """Put one of ``NOT_KEY_FILES`` at ``path`` (which must not exist)."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path.symlink_to("/dev/null")  # /dev/zero would grow a process on the code before
    else:
        path.write_bytes(b"k" * (64 * 1024 + 1))
