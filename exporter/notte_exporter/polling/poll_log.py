"""What the log says about polls: each outcome with fields, without drowning the operator.

A poll runs every 30 s; an outage of an hour would otherwise write 120 identical warnings
and bury everything else. So a failure is logged at warning the first time, and while the
same failure (same reason and HTTP status) repeats, only a reminder is, at most every
``reminder_every`` seconds, with how many polls failed since; every poll still goes out at
debug. A different failure is news and is logged at once. When polls succeed again, one
line says how long they failed and how many polls did.

Every line carries the poll's fields (``reason``, ``duration_seconds``, ``sessions``,
``pages``, ``requests``, ``status``) as structured fields, so that logfmt and JSON carry the
same facts and a log pipeline can count and graph them without parsing the message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from notte_exporter.durations import format_duration
from notte_exporter.polling.state import PollStatus

REMINDER_SECONDS = 300.0


def poll_fields(status: PollStatus) -> dict[str, Any]:
    """The structured fields of a poll outcome."""
    fields: dict[str, Any] = {
        "outcome": "success" if status.ok else "failure",
        "duration_seconds": round(status.duration_seconds, 3),
        "pages": status.pages,
        "requests": status.requests,
    }
    if status.reason is not None:
        fields["reason"] = status.reason.value
    if status.sessions is not None:
        fields["sessions"] = status.sessions
    if status.http_status is not None:
        fields["status"] = status.http_status
    return fields


class PollLog:
    """Logs poll outcomes: first failures, rate-limited reminders, one recovery line."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        reminder_every: float = REMINDER_SECONDS,
    ) -> None:
        self._log = logger
        self._monotonic = monotonic
        self._reminder_every = reminder_every
        self._failing_since: float | None = None
        self._failed_polls = 0
        self._current: tuple[str, int | None] | None = None
        self._last_logged = 0.0
        self._unlogged = 0

    def report(self, status: PollStatus) -> None:
        if status.ok:
            self._succeeded(status)
        else:
            self._failed(status)

    def _succeeded(self, status: PollStatus) -> None:
        fields = poll_fields(status)
        if self._failing_since is not None:
            failed_for = self._monotonic() - self._failing_since
            self._log.info(
                "polls recovered after failing for %s (%d failed polls)",
                format_duration(round(failed_for, 3)),
                self._failed_polls,
                extra={
                    "fields": {
                        **fields,
                        "failed_polls": self._failed_polls,
                        "failed_for_seconds": round(failed_for, 3),
                    }
                },
            )
            self._failing_since, self._failed_polls, self._current = None, 0, None
        self._log.debug(
            "poll succeeded: %s live sessions in %.3fs",
            status.sessions,
            status.duration_seconds,
            extra={"fields": fields},
        )

    def _failed(self, status: PollStatus) -> None:
        assert status.reason is not None
        now = self._monotonic()
        if self._failing_since is None:
            self._failing_since = now
        self._failed_polls += 1
        key = (status.reason.value, status.http_status)
        fields = poll_fields(status)
        text = f"{status.reason.value}: {status.message}; {status.advice}"
        if key != self._current:
            self._current, self._last_logged, self._unlogged = key, now, 0
            self._log.warning("poll failed: %s", text, extra={"fields": fields})
        elif now - self._last_logged >= self._reminder_every:
            repeats = self._unlogged + 1
            self._last_logged, self._unlogged = now, 0
            self._log.warning(
                "poll still failing (%d more since the last line, failing for %s): %s",
                repeats,
                format_duration(round(now - self._failing_since)),
                text,
                extra={
                    "fields": {
                        **fields,
                        "repeated": repeats,
                        "failed_for_seconds": round(now - self._failing_since, 3),
                    }
                },
            )
        else:
            self._unlogged += 1
            self._log.debug("poll failed again: %s", text, extra={"fields": fields})
