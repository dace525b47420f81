"""The account's spend and credits, read from ``GET /usage`` on a schedule of its own.

Usage changes slowly and every request spends the rate limit the account's agents share, so
it is read every ``--usage.interval`` (default 5m), never once per poll. It is a side dish:
whether ``/usage`` answers, refuses (401, 403), is missing (404), fails (5xx) or changes
shape never touches ``notte_up``, the session metrics or readiness; it only shows in
``notte_usage_up``. A key that may not read usage (403) or an API without it (404) will not
change its mind in five minutes: those back off to hourly and are logged once, with why.

Like the session snapshot, the last report that was read is kept when a later read fails
(stale but true); metrics/usage.py renders it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from notte_exporter.api.client import NotteClient
from notte_exporter.api.models import UsageReport
from notte_exporter.errors import ApiError, ShutdownRequested, unexpected

log = logging.getLogger(__name__)

# After a 403 or 404 the answer will not change soon: ask again hourly, not every interval.
REFUSED_BACKOFF_SECONDS = 3600.0
REFUSED_STATUSES = frozenset({403, 404})


@dataclass(frozen=True)
class UsageState:
    """What the usage watcher knows: the last report read, and how the last read went."""

    report: UsageReport | None = None
    up: bool | None = None  # None until the first read
    last_success: datetime | None = None


class UsageWatcher:
    """Reads ``GET /usage`` when due and publishes an immutable ``UsageState``."""

    def __init__(
        self,
        client: NotteClient,
        *,
        interval: float,
        budget: float,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._interval = interval
        self._budget = budget
        self._clock = clock
        self._monotonic = monotonic
        self._next_due: float | None = None  # None: due now
        # One read at a time: the daemon's usage thread and poll_once() may both ask.
        self._reading = threading.Lock()
        self._lock = threading.Lock()
        self._state = UsageState()
        self._logged: str | None = None  # the failure last logged, so it is logged once

    @property
    def state(self) -> UsageState:
        with self._lock:
            return self._state

    def seconds_until_due(self) -> float:
        if self._next_due is None:
            return 0.0
        return max(self._next_due - self._monotonic(), 0.0)

    def poll_if_due(self) -> bool:
        """Read usage if its interval has passed; True if a read was made.

        A read that fails, whatever the reason (a bug of the exporter's own included, then
        reason ``other``), shows as ``notte_usage_up`` 0 and is tried again at the next
        interval; only ShutdownRequested, and a failure of the schedule's own clock, leave.
        """
        with self._reading:
            if self.seconds_until_due() > 0:
                return False
            self._poll()
            return True

    def _poll(self) -> None:
        started = self._monotonic()
        self._next_due = started + self._interval
        try:
            report = self._client.get_usage(deadline=self._client.deadline_after(self._budget))
            read = UsageState(report=report, up=True, last_success=self._clock())
        except ApiError as exc:
            self._fail(exc, started)
            return
        except ShutdownRequested:
            raise
        except Exception as exc:  # a bug here must not stop the watcher
            log.debug("unexpected error reading usage", exc_info=True)
            self._fail(unexpected(exc), started)
            return
        with self._lock:
            self._state = read
        if self._logged is not None:
            log.info(
                "usage is readable again (GET /usage)",
                extra={"fields": {"endpoint": "/usage", "outcome": "success"}},
            )
            self._logged = None

    def _fail(self, error: ApiError, started: float) -> None:
        refused = error.status in REFUSED_STATUSES
        if refused:
            self._next_due = started + max(self._interval, REFUSED_BACKOFF_SECONDS)
        with self._lock:
            self._state = UsageState(
                report=self._state.report, up=False, last_success=self._state.last_success
            )
        # The same structured fields as the poll log lines (polling/poll_log.py), for log pipelines.
        fields: dict[str, object] = {
            "endpoint": "/usage",
            "outcome": "failure",
            "reason": error.reason.value,
            "retry_in_seconds": round(self.seconds_until_due(), 3),
        }
        if error.status is not None:
            fields["status"] = error.status
        what = f"{error.reason.value}:{error.status}"
        if what == self._logged:
            log.debug("usage still unreadable: %s", error.message, extra={"fields": fields})
            return
        self._logged = what
        if refused:
            log.warning(
                "cannot read usage: %s; the session metrics are unaffected; asking again "
                "hourly (%s)",
                error.message,
                "the key may not read usage" if error.status == 403 else "the API has no /usage",
                extra={"fields": fields},
            )
        else:
            log.warning(
                "cannot read usage: %s: %s; the session metrics are unaffected",
                error.reason.value,
                error.message,
                extra={"fields": fields},
            )
