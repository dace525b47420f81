"""What the daemon knows right now: the latest snapshot and how the last polls went.

The poll thread writes, scrape and page threads read. Every write replaces immutable
values under a lock, so a reader sees one consistent poll, never half of two. The recent
polls are kept in a bounded ring (``RECENT_POLLS``), so memory stays flat however long the
exporter runs.

A poll that could not be published fails after all: its entry is replaced, so that each poll
stays one entry. A loop the exporter cannot work without that stops (other than at shutdown)
makes the exporter unhealthy for good: ``/healthz`` fails, so that it is restarted.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from notte_exporter.errors import FailureReason
from notte_exporter.polling.snapshot import Snapshot


@dataclass(frozen=True)
class PollStatus:
    ok: bool
    finished_at: datetime
    duration_seconds: float
    reason: FailureReason | None = None
    message: str = ""
    # What to do about a failure (errors.ADVICE, or the error's own better advice).
    advice: str = ""
    # Live sessions found (None when the listing failed), pages of the live listing read,
    # API requests made, and the HTTP status of the answer that decided the outcome (None
    # when none came: timeouts, network errors).
    sessions: int | None = None
    pages: int = 0
    requests: int = 0
    http_status: int | None = None


RECENT_POLLS = 20


class ExporterState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._finished = threading.Condition(self._lock)
        self._polls_finished = 0
        self._snapshot: Snapshot | None = None
        self._last_success: datetime | None = None
        self._last_poll: PollStatus | None = None
        self._recent: deque[PollStatus] = deque(maxlen=RECENT_POLLS)
        self._stopped_loops: list[str] = []

    def record_success(self, snapshot: Snapshot, status: PollStatus) -> None:
        with self._lock:
            self._snapshot = snapshot
            self._last_success = status.finished_at
            self._last_poll = status
            self._count_poll()

    def record_failure(self, status: PollStatus) -> None:
        # The previous snapshot stays: stale but true data beats no data, and its age shows
        # through notte_exporter_last_poll_success_timestamp_seconds.
        with self._lock:
            self._last_poll = status
            self._count_poll()

    def replace_last_poll(self, status: PollStatus) -> None:
        """The poll recorded last ended as ``status`` after all (its publish failed)."""
        with self._lock:
            if self._recent and self._recent[-1] is self._last_poll:
                self._recent.pop()
            self._last_poll = status
            self._recent.append(status)

    def _count_poll(self) -> None:
        assert self._last_poll is not None
        self._recent.append(self._last_poll)

    def poll_published(self) -> None:
        """The poll recorded last has ended, published if it could be: wake whoever waits."""
        with self._lock:
            self._polls_finished += 1
            self._finished.notify_all()

    def loop_stopped(self, reason: str) -> None:
        """A loop that must run as long as the exporter has stopped, for ``reason``."""
        with self._lock:
            self._stopped_loops.append(reason)

    @property
    def unhealthy(self) -> str | None:
        """Why the exporter must be restarted (every loop that stopped), or None."""
        with self._lock:
            return "; ".join(self._stopped_loops) or None

    def wait_for_polls(self, count: int, timeout: float) -> bool:
        """Block until ``count`` polls have finished and been published, so that a scrape
        made after it returns sees them; for callers that must not guess."""
        with self._finished:
            return self._finished.wait_for(lambda: self._polls_finished >= count, timeout)

    @property
    def snapshot(self) -> Snapshot | None:
        with self._lock:
            return self._snapshot

    @property
    def last_success(self) -> datetime | None:
        with self._lock:
            return self._last_success

    @property
    def last_poll(self) -> PollStatus | None:
        with self._lock:
            return self._last_poll

    @property
    def recent_polls(self) -> list[PollStatus]:
        """The last ``RECENT_POLLS`` polls, newest first."""
        with self._lock:
            return list(reversed(self._recent))

    @property
    def up(self) -> bool:
        with self._lock:
            return self._last_poll is not None and self._last_poll.ok

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._last_success is not None

    @property
    def unready(self) -> str | None:
        """Why ``/readyz`` fails, or None once a poll has succeeded."""
        return None if self.ready else "no successful poll yet"
