"""The account's spend and credits, read from ``GET /usage`` on a schedule of its own.

Usage changes slowly and every request spends the rate limit the account's agents share, so
it is read every ``--usage.interval`` (default 5m), never once per poll. It is a side dish:
whether ``/usage`` answers, refuses (401, 403), is missing (404), fails (5xx) or changes
shape never touches ``notte_up``, the session metrics or readiness; it only shows in
``notte_usage_up``. A key that may not read usage (403) or an API without it (404) will not
change its mind in five minutes: those back off to hourly and are logged once, with why.

Like the session snapshot, the last report that was read stays on ``/metrics`` when a later
read fails (stale but true); ``notte_usage_last_success_timestamp_seconds`` shows its age.
The values are exposed as the API reports them: when the month rolls over they drop to near
0, and the rules, not the exporter, deal with that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .client import NotteClient
from .errors import ApiError, ShutdownRequested, unexpected
from .labels import text_label
from .usage_report import UsageReport

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
        # The same structured fields as the poll log lines (pollreport.py), for log pipelines.
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


CATEGORIES = ("browser", "proxy", "llm", "function")
SOURCES = ("subscription", "topup")


class UsageCollector(Collector):
    """Renders the usage state.

    Exposition (abridged)::

        # HELP notte_usage_up Whether the last read of GET /usage succeeded (1) or failed (0).
        # TYPE notte_usage_up gauge
        notte_usage_up 1.0
        # HELP notte_usage_cost_dollars Cost so far this billing period, by category, ...
        # TYPE notte_usage_cost_dollars gauge
        notte_usage_cost_dollars{category="browser"} 12.4
        notte_usage_cost_dollars{category="proxy"} 4.5
        # HELP notte_usage_info The plan and billing period of the last usage report; always 1.
        # TYPE notte_usage_info gauge
        notte_usage_info{period="May 2026",plan_type="pro"} 1.0
    """

    def __init__(
        self, state: Callable[[], UsageState], *, redact: Callable[[str], str] = str
    ) -> None:
        self._state = state
        # The one redaction step: the plan and period are free text the API fills.
        self._redact = redact

    def describe(self) -> list[Metric]:
        return []  # families come with the data; nothing to describe before a read

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        if state.up is not None:
            yield _gauge(
                "notte_usage_up",
                "Whether the last read of GET /usage succeeded (1) or failed (0); independent "
                "of notte_up.",
                1.0 if state.up else 0.0,
            )
        if state.last_success is not None:
            yield _gauge(
                "notte_usage_last_success_timestamp_seconds",
                "Unix time of the last successful read of GET /usage; the age of every "
                "notte_usage_* value.",
                state.last_success.timestamp(),
            )
        report = state.report
        if report is None:
            return
        yield _labelled(
            "notte_usage_cost_dollars",
            "Cost so far this billing period, by category, in US dollars, from GET /usage.",
            "category",
            zip(
                CATEGORIES,
                (
                    report.browser_usage_cost,
                    report.proxy_usage_cost,
                    report.llm_usage_cost,
                    report.function_usage_cost,
                ),
                strict=True,
            ),
        )
        yield _gauge(
            "notte_usage_total_cost_dollars",
            "Total cost so far this billing period in US dollars (total_cost of GET /usage).",
            report.total_cost,
        )
        yield _labelled(
            "notte_usage_limit_dollars",
            "Credits of the billing period in US dollars, by source (subscription or top-up).",
            "source",
            zip(
                SOURCES, (report.subscription_limit_amount, report.topup_limit_amount), strict=True
            ),
        )
        yield _labelled(
            "notte_usage_balance_dollars",
            "Credits left this billing period in US dollars, by source (subscription or top-up).",
            "source",
            zip(
                SOURCES,
                (report.subscription_balance_amount, report.topup_balance_amount),
                strict=True,
            ),
        )
        yield _gauge(
            "notte_usage_total_balance_dollars",
            "Credits left this billing period in US dollars (balance_amount of GET /usage).",
            report.balance_amount,
        )
        yield _gauge(
            "notte_usage_limit_exceeded",
            "Whether the usage limit is exceeded (1): without a card on file, new work is "
            "refused with 402 until the period resets.",
            1.0 if report.is_usage_limit_exceeded else 0.0,
        )
        yield _gauge(
            "notte_usage_sessions",
            "Sessions started this billing period, as GET /usage counts them.",
            float(report.session_count),
        )
        yield _gauge(
            "notte_usage_functions",
            "Function runs this billing period, as GET /usage counts them.",
            float(report.function_count),
        )
        info = GaugeMetricFamily(
            "notte_usage_info",
            "The plan and billing period of the last usage report; always 1.",
            labels=["plan_type", "period"],
        )
        info.add_metric(
            [text_label(report.plan_type, self._redact), text_label(report.period, self._redact)],
            1.0,
        )
        yield info


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _labelled(
    name: str, help_text: str, label: str, values: Iterable[tuple[str, float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=[label])
    for key, value in values:
        family.add_metric([key], value)
    return family
