"""One account's pipeline: its client, tracker, poller, state, usage reads, reaper and registry.

Everything an account's polls change lives here and nowhere else, so that accounts share
nothing but the process: one account's failure, slowness or 401 cannot reach another's
numbers, and a reaper's policy can only ever stop sessions of the account it belongs to
(its stops go through that account's client, with that account's key).

Without ``--config.file`` the exporter is one pipeline, built from the settings and the key
(``single_account``): an ``Account`` with ``keyed=False``, whose series carry neither
``account`` nor ``key``, exactly as before accounts existed. With it, the daemon builds one
pipeline per account and the union collector (metrics/accounts.py) adds ``account`` to every
series of every pipeline's registry.

The pipeline runs one poll at a time (``poll``); the daemon decides when, on which thread,
and publishes what it rendered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from prometheus_client import CollectorRegistry

from notte_exporter.accounts import Account, reload_keys
from notte_exporter.api.client import NotteClient
from notte_exporter.errors import ShutdownRequested, unexpected
from notte_exporter.instrumentation import ExporterMetrics
from notte_exporter.keys import ApiKey
from notte_exporter.labels import BROWSER_TYPES, BoundedLabel
from notte_exporter.metrics.sessions import SessionCollector
from notte_exporter.metrics.usage import UsageCollector
from notte_exporter.polling.attribution import Attribution
from notte_exporter.polling.lifecycle import LifecycleMetrics, LifecycleTracker
from notte_exporter.polling.poller import PollConfig, Poller, utc_now
from notte_exporter.polling.state import ExporterState, PollStatus
from notte_exporter.polling.usage import UsageWatcher
from notte_exporter.settings import Settings

if TYPE_CHECKING:
    from notte_exporter.reaper.reaper import Reaper

log = logging.getLogger(__name__)

# Live statuses the API is known to send; others it adds later get their own label value.
LIVE_STATUS_LABELS = ("active", "authenticating")


def single_account(settings: Settings, api_key: ApiKey, api_url: str | None = None) -> Account:
    """The one account of an exporter without ``--config.file``: no ``account``, no ``key``."""
    return Account(
        name="",
        api_url=api_url or settings.notte_api_url,
        key=api_key,
        sessions_limit=settings.sessions_limit,
        reaper_config_file=settings.reaper_config_file,
        keyed=False,
    )


class Pipeline:
    """Everything one account's polls need and change, with a registry of its own.

    Raises ReaperConfigError when the account's reaper policy file is broken (start-up
    reports every problem, exit 2).
    """

    def __init__(
        self,
        settings: Settings,
        account: Account,
        *,
        sleep: Callable[[float], None],
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = utc_now,
        usage_clock: Callable[[], float] = time.monotonic,
        thread_cpu: Callable[[], float] = time.thread_time,
        mode: str = "live",
    ) -> None:
        self.account = account
        self._clock = clock
        redact = account.key.redact
        self.registry = CollectorRegistry(auto_describe=True)
        self.state = ExporterState()
        self.metrics = ExporterMetrics(self.registry)
        browser_label = BoundedLabel(BROWSER_TYPES, redact=redact)
        status_label = BoundedLabel(LIVE_STATUS_LABELS, redact=redact)
        self.tracker = LifecycleTracker(
            LifecycleMetrics(self.registry, BROWSER_TYPES, keyed=account.keyed),
            browser_label,
            watch_start=clock(),
            pending_timeout=timedelta(seconds=settings.sessions_pending_timeout),
        )

        def client(key: ApiKey, metrics: ExporterMetrics) -> NotteClient:
            return NotteClient(
                account.api_url,
                key,
                metrics,
                timeout=settings.notte_timeout,
                max_response_bytes=settings.notte_max_response_bytes,
                retries=settings.notte_retries,
                transport=transport,
                # Backoff waits end early on shutdown, so SIGTERM never waits out a Retry-After.
                sleep=sleep,
                # Retry-After dates and rate-limit resets are read on the exporter's own clock.
                wall_clock=lambda: clock().timestamp(),
            )

        self.client = client(account.key, self.metrics)
        # One client per named key, counted in this account's request metrics: what the
        # attribution of sessions to keys lists with (only_current_token=true).
        self.key_clients = {
            named.name: client(named.key, self.metrics.with_own_rate_limit())
            for named in account.keys
        }
        self.attribution = (
            Attribution(self.key_clients, self.registry, redact=redact)
            if self.key_clients
            else None
        )
        self.reaper: Reaper | None = None
        if account.reaper_config_file is not None:
            # Imported only here: without a policy file the process never loads the reaper,
            # and never makes a request other than a GET.
            from notte_exporter.reaper.metrics import ReaperCollector  # noqa: PLC0415
            from notte_exporter.reaper.policy import LivePolicy  # noqa: PLC0415
            from notte_exporter.reaper.reaper import Reaper  # noqa: PLC0415

            # Stops go through this account's client: a policy acts on its own account only.
            self.reaper = Reaper(
                LivePolicy(account.reaper_config_file), self.client, clock=clock, redact=redact
            )
            self.registry.register(ReaperCollector(self.reaper.counts, redact=redact))
        self.poller = Poller(
            self.client,
            PollConfig(
                page_size=settings.notte_page_size,
                max_pages=settings.notte_max_pages,
                concurrency=settings.notte_concurrency,
                only_current_token=settings.notte_only_current_token,
                poll_timeout=settings.effective_poll_timeout,
                lookup_budget=settings.sessions_lookup_budget,
                idle_threshold=timedelta(seconds=settings.sessions_idle_threshold),
                overdue_grace=timedelta(seconds=settings.sessions_overdue_grace),
                detail_limit=settings.sessions_detail_limit,
            ),
            self.state,
            self.tracker,
            self.metrics,
            browser_label,
            status_label,
            clock=clock,
            # A request's wait for the API is its time less its thread's CPU (tests inject a
            # clock to stand for an API's latency).
            thread_cpu=thread_cpu,
            redact=redact,
            reaper=self.reaper,
            attribution=self.attribution,
        )
        self.registry.register(
            SessionCollector(
                self.state,
                browser_label.values,
                lambda: self.metrics.rate_limit,
                self.tracker.stats,
                sessions_limit=account.sessions_limit,
                mode=mode,
                keyed=account.keyed,
            )
        )
        # usage_clock schedules the usage reads (tests inject one to count them exactly).
        self.usage: UsageWatcher | None = None
        if settings.collector_usage:
            watcher = UsageWatcher(
                self.client,
                interval=settings.usage_interval,
                budget=settings.effective_poll_timeout,
                clock=clock,
                monotonic=usage_clock,
            )
            self.usage = watcher
            self.registry.register(UsageCollector(lambda: watcher.state, redact=redact))

    @property
    def name(self) -> str:
        """The account's name: the value of its ``account`` label; empty in single mode."""
        return self.account.name

    def poll(self) -> PollStatus:
        """One poll of the account, its outcome recorded; a failure is returned, not raised.

        Raises only ShutdownRequested, and what breaks the exporter's own clock: whatever
        else goes wrong, the poll and the recording of its outcome alike, ends this poll as
        a failure.
        """
        try:
            return self.poller.poll()
        except ShutdownRequested:
            raise
        except Exception as exc:  # past the poll's own handling: recording its outcome broke
            return self._poll_broke(exc)

    def _poll_broke(self, exc: Exception) -> PollStatus:
        """The poll raised: it fails, counted once under ``other``, and says so once."""
        error = unexpected(exc)
        status = PollStatus(
            ok=False,
            finished_at=self._clock(),
            duration_seconds=0.0,
            reason=error.reason,
            message=error.message,
            advice=error.advice,
        )
        self.metrics.poll_failures.labels(reason=error.reason.value).inc()
        self.state.record_failure(status)
        log.debug("the poll failed unexpectedly", exc_info=exc)
        log.error(
            "poll failed: %s: %s; %s",
            error.reason.value,
            error.message,
            error.advice,
            extra={"fields": self.fields(outcome="failure", reason=error.reason.value)},
        )
        return status

    def fields(self, **fields: str) -> dict[str, str]:
        """A log line's structured fields, with the account's name when it has one."""
        return {"account": self.name, **fields} if self.account.keyed else fields

    def reload(self) -> list[str]:
        """Re-read the account's key files and reaper policy (SIGHUP); returns what changed."""
        changes = reload_keys((self.account,))
        if self.reaper is not None:
            change = self.reaper.reload()
            if change is not None:
                changes.append(change)
        return changes

    def close(self) -> None:
        """Release the API connections and the poll's fetching threads (no poll under way)."""
        self.poller.close()
        self.client.close()
        for client in self.key_clients.values():
            client.close()
