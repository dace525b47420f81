"""Wires the parts into a running exporter: client, tracker, poller, collectors, server,
and the reaper when its policy file is given (reaper/).

The poll loop runs on its own thread and the HTTP server on others; they share only the
published state. Polls run one after another on a fixed schedule (each poll's budget is
shorter than the interval), so they can never overlap. The usage reads (``GET /usage``) run
on a thread and schedule of their own, so a slow or failing ``/usage`` never delays a poll;
what they read is published with the next poll (usage changes over minutes, polls come
every few seconds), so that the poll thread stays the only one that reads the registry:
scrapes render from what it published (metrics/exposition.py).

A round of a loop can fail; the loop cannot die of it. An exception in a poll, a usage read
or a publish ends that one attempt: it is counted under its reason (``other`` when nothing
expected it), logged in one line, and the next attempt comes at the next interval. Should a
loop still end other than at shutdown (a ``BaseException``, a fault in its own scheduling),
it says so in one log line rather than a raw traceback, and ``/healthz`` fails from then on,
so that the process is restarted.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from notte_exporter import __version__
from notte_exporter.api.client import NotteClient
from notte_exporter.errors import (
    UNEXPECTED_ADVICE,
    FailureReason,
    ShutdownRequested,
    describe,
    display_url,
    unexpected,
)
from notte_exporter.instrumentation import ExporterMetrics
from notte_exporter.keys import ApiKey
from notte_exporter.labels import BROWSER_TYPES, BoundedLabel
from notte_exporter.metrics.exposition import PublishedExposition
from notte_exporter.metrics.sessions import SessionCollector
from notte_exporter.metrics.usage import UsageCollector
from notte_exporter.polling.lifecycle import LifecycleMetrics, LifecycleTracker
from notte_exporter.polling.poller import PollConfig, Poller, utc_now
from notte_exporter.polling.state import ExporterState, PollStatus
from notte_exporter.polling.usage import UsageWatcher
from notte_exporter.settings import Settings, key_source
from notte_exporter.web import statuspage
from notte_exporter.web.messages import Handler
from notte_exporter.web.routes import Routes
from notte_exporter.web.server import IDLE_TIMEOUT, WebServer

if TYPE_CHECKING:
    from notte_exporter.reaper.policy import LivePolicy
    from notte_exporter.reaper.reaper import Reaper
    from notte_exporter.web.config import LiveWebConfig

log = logging.getLogger(__name__)

# The *_created series double the size of the exposition and nothing here reads them:
# counters reset only when the process restarts, which process_start_time_seconds shows.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Live statuses the API is known to send; others it adds later get their own label value.
LIVE_STATUS_LABELS = ("active", "authenticating")

# How the loops wait between rounds: up to the seconds given, True once the exporter stops.
LoopWait = Callable[[threading.Event, float], bool]


class Exporter:
    """One exporter instance: everything but process-level concerns (signals, exit codes)."""

    def __init__(
        self,
        settings: Settings,
        api_key: ApiKey,
        *,
        api_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] | None = None,
        process_metrics: bool = True,
        usage_clock: Callable[[], float] = time.monotonic,
        thread_cpu: Callable[[], float] = time.thread_time,
        loop_wait: LoopWait = threading.Event.wait,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.settings = settings
        self._idle_timeout = idle_timeout
        self.api_key = api_key
        self._clock = clock
        self.started_at = clock()
        # Checked now, so that a broken file stops start-up (WebConfigError) with every problem.
        self.web_config: LiveWebConfig | None = None
        if settings.web_config_file:
            # Imported only here and in start(): without a web config the process never loads
            # YAML, bcrypt or the web config's models (about 1.4 MB resident).
            from notte_exporter.web.config import LiveWebConfig  # noqa: PLC0415

            self.web_config = LiveWebConfig(settings.web_config_file)
        # Likewise the reaper's policy file (ReaperConfigError); without one the process
        # never loads the reaper, and never makes a request other than a GET.
        reaper_policy: LivePolicy | None = None
        if settings.reaper_config_file:
            from notte_exporter.reaper.policy import LivePolicy  # noqa: PLC0415

            reaper_policy = LivePolicy(settings.reaper_config_file)
        # The one redaction step (see redaction.py) for every text this exporter serves.
        self.redact = api_key.redact
        # What polls change, rendered once per poll; apart from the per-process series
        # (prometheus_client's process, platform and GC collectors), which change all the
        # time and are read at each scrape (see metrics/exposition.py).
        self.registry = CollectorRegistry(auto_describe=True)
        self.process_registry: CollectorRegistry | None = None
        if process_metrics and not settings.web_disable_exporter_metrics:
            self.process_registry = CollectorRegistry(auto_describe=True)
            ProcessCollector(registry=self.process_registry)
            PlatformCollector(registry=self.process_registry)
            GCCollector(registry=self.process_registry)
        self.state = ExporterState()
        self._stop = threading.Event()
        # Tests inject one that ends each wait when told to, to run the loops round by round.
        self._loop_wait = loop_wait
        # The render failure last logged, so that one that repeats at every poll is logged once.
        self._render_failure: str | None = None
        self.metrics = ExporterMetrics(self.registry)
        browser_label = BoundedLabel(BROWSER_TYPES, redact=self.redact)
        status_label = BoundedLabel(LIVE_STATUS_LABELS, redact=self.redact)
        self.tracker = LifecycleTracker(
            LifecycleMetrics(self.registry, BROWSER_TYPES),
            browser_label,
            watch_start=clock(),
            pending_timeout=timedelta(seconds=settings.sessions_pending_timeout),
        )
        self.client = NotteClient(
            api_url or settings.notte_api_url,
            api_key,
            self.metrics,
            timeout=settings.notte_timeout,
            max_response_bytes=settings.notte_max_response_bytes,
            retries=settings.notte_retries,
            transport=transport,
            # Backoff waits end early on shutdown, so SIGTERM never waits out a Retry-After.
            sleep=sleep if sleep is not None else self._interruptible_sleep,
            # Retry-After dates and rate-limit resets are read on the exporter's own clock.
            wall_clock=lambda: clock().timestamp(),
        )
        self.reaper: Reaper | None = None
        if reaper_policy is not None:
            from notte_exporter.reaper.metrics import ReaperCollector  # noqa: PLC0415 - see reaper_policy
            from notte_exporter.reaper.reaper import Reaper  # noqa: PLC0415

            self.reaper = Reaper(reaper_policy, self.client, clock=clock, redact=self.redact)
            self.registry.register(ReaperCollector(self.reaper.counts, redact=self.redact))
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
            redact=self.redact,
            reaper=self.reaper,
        )
        self.registry.register(
            SessionCollector(
                self.state,
                browser_label.values,
                lambda: self.metrics.rate_limit,
                self.tracker.stats,
                sessions_limit=settings.sessions_limit,
                mode=self.mode,
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
            self.registry.register(UsageCollector(lambda: watcher.state, redact=self.redact))
        # Rendered now too, so that scrapes before the first poll ends see notte_up 0.
        self.published = PublishedExposition(self.registry, self.process_registry)
        self._poll_thread: threading.Thread | None = None
        self._usage_thread: threading.Thread | None = None
        self._web_config_thread: threading.Thread | None = None
        self._reaper_thread: threading.Thread | None = None
        self._server: WebServer | None = None

    @property
    def mode(self) -> str:
        """``demo`` when the data is simulated, else ``live``: said on /metrics and the page."""
        return "demo" if self.settings.demo else "live"

    def status_page(self) -> str:
        """The status page at ``/``, as of now."""
        settings = self.settings
        return statuspage.render(
            statuspage.StatusView(
                version=__version__,
                python_version=platform.python_version(),
                started_at=self.started_at,
                now=self._clock(),
                demo=settings.demo,
                telemetry_path=settings.web_telemetry_path,
                api_url=display_url(self.client.base_url),
                key_source="a throwaway key of the simulator (--demo)"
                if settings.demo
                else key_source(settings),
                poll_interval=settings.poll_interval,
                poll_timeout=settings.effective_poll_timeout,
                page_size=settings.notte_page_size,
                lookup_budget=settings.sessions_lookup_budget,
                sessions_limit=settings.sessions_limit,
                detail_limit=settings.sessions_detail_limit,
                polls=self.state.recent_polls,
                snapshot=self.state.snapshot,
                reaper=self.reaper.view() if self.reaper is not None else None,
            )
        )

    def _interruptible_sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise ShutdownRequested

    def poll_once(self) -> PollStatus:
        """Poll, read usage if it is due, then publish (for --once, tests, the catalogue)."""
        return self._poll_and_publish(read_usage=True)

    def _poll_and_publish(self, *, read_usage: bool = False) -> PollStatus:
        """One poll, then publish; the daemon's loop leaves usage to its own thread.

        Raises only ShutdownRequested, and what breaks the exporter's own clock: whatever
        else goes wrong ends this poll as a failure, the poll (``Poller.poll``), recording
        its outcome and publishing alike.
        """
        try:
            status = self.poller.poll()
        except ShutdownRequested:
            raise
        except Exception as exc:  # past the poll's own handling: recording its outcome broke
            status = self._poll_broke(exc)
        if read_usage and self.usage is not None:
            self.usage.poll_if_due()
        status = self._publish(status)
        self.state.poll_published()
        return status

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
            extra={"fields": {"outcome": "failure", "reason": error.reason.value}},
        )
        return status

    def _publish(self, status: PollStatus) -> PollStatus:
        """Render ``/metrics`` for the poll that ended as ``status``; what it counts as then.

        A publish that raises changes nothing a scrape gets (``PublishedExposition.publish``
        is all or nothing). A poll that succeeded then fails after all (reason ``other``,
        counted once) and is published again, so that scrapes see it: ``notte_up`` 0 and
        the failure counted. If that render fails too, ``/metrics`` keeps the last poll it
        could render, whose success timestamp then ages (``NotteExporterStale``).
        """
        try:
            self.published.publish()
        except Exception as exc:
            failed = self._render_failed(status, exc)
        else:
            if self._render_failure is not None:
                log.info("rendering /metrics works again", extra={"fields": {"outcome": "success"}})
                self._render_failure = None
            return status
        try:
            self.published.publish()
        except Exception:
            log.debug("the failed poll could not be published either", exc_info=True)
        return failed

    def _render_failed(self, status: PollStatus, exc: Exception) -> PollStatus:
        error = describe(exc)
        failed = status
        if status.ok:
            failed = replace(
                status,
                ok=False,
                reason=FailureReason.OTHER,
                message=f"rendering /metrics failed: {error}",
                advice=UNEXPECTED_ADVICE,
            )
            self.metrics.poll_failures.labels(reason=FailureReason.OTHER.value).inc()
            self.state.replace_last_poll(failed)
        log.debug("rendering /metrics failed", exc_info=exc)
        fields = {"outcome": "failure", "reason": FailureReason.OTHER.value}
        if error == self._render_failure:
            log.debug("rendering /metrics still fails: %s", error, extra={"fields": fields})
        else:
            self._render_failure = error
            log.error(
                "cannot render /metrics: %s; scrapes get the last poll it could render; %s",
                error,
                UNEXPECTED_ADVICE,
                extra={"fields": fields},
            )
        return failed

    def exposition(self) -> bytes:
        """The text exposition a scrape asking for nothing in particular gets."""
        return self.published.text()

    def start(self) -> str:
        """Start serving and polling in the background; returns the metrics URL."""
        routes: Handler = Routes(
            self.published,
            self.state,
            self.settings.web_telemetry_path,
            self.redact,
            self.status_page,
        )
        web_config = self.web_config
        if web_config is not None:
            from notte_exporter.web.auth import Guard  # noqa: PLC0415 - see the web config in __init__

            routes = Guard(routes, web_config)
        self._server = WebServer(
            routes,
            self.settings.listen_addresses,
            max_requests=self.settings.web_max_requests,
            tls=web_config.tls_context if web_config is not None and web_config.tls_on else None,
            idle_timeout=self._idle_timeout,
        )
        self._server.start()
        self._poll_thread = threading.Thread(
            target=self._run_loop, args=("poll", self._poll_loop), name="poll", daemon=True
        )
        self._poll_thread.start()
        if self.usage is not None:
            usage = self.usage
            self._usage_thread = threading.Thread(
                target=self._run_loop,
                args=("usage", lambda: self._usage_loop(usage)),
                name="usage",
                daemon=True,
            )
            self._usage_thread.start()
        if web_config is not None:
            # Looks at the web config's files once a second, so that requests never do.
            self._web_config_thread = threading.Thread(
                target=web_config.watch, args=(self._stop,), name="web-config", daemon=True
            )
            self._web_config_thread.start()
        if self.reaper is not None:
            # Looks at the policy file once a second: an edit applies from the next poll.
            self._reaper_thread = threading.Thread(
                target=self.reaper.watch, args=(self._stop,), name="reaper-config", daemon=True
            )
            self._reaper_thread.start()
        return f"{self._server.url}{self.settings.web_telemetry_path}"

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.port

    @property
    def urls(self) -> list[str]:
        """The base URL of every listen address."""
        assert self._server is not None, "start() first"
        return self._server.urls

    def _run_loop(self, name: str, loop: Callable[[], None]) -> None:
        """Run ``loop`` on this thread until shutdown; if it ends before, fail ``/healthz``.

        Whatever ends it is caught here, BaseException included, and said in one log line:
        threading's default hook would print a raw traceback to stderr instead, and the
        exporter would go on serving its last poll as if nothing had happened.
        """
        try:
            loop()
        except BaseException as exc:
            if self._stop.is_set():
                log.debug("the %s loop ended while stopping", name, exc_info=exc)
                return
            log.debug("the %s loop stopped", name, exc_info=exc)
            reason = f"the {name} loop stopped: {describe(exc)}"
        else:
            if self._stop.is_set():
                return
            reason = f"the {name} loop stopped"
        log.error(
            "%s; /healthz fails from now on, so that the exporter is restarted",
            reason,
            extra={"fields": {"loop": name}},
        )
        self.state.loop_stopped(reason)

    def _poll_loop(self) -> None:
        interval = self.settings.poll_interval
        next_start = time.monotonic()
        while not self._stop.is_set():
            try:
                self._poll_and_publish()
            except ShutdownRequested:
                break
            next_start += interval
            # After a stall (a suspended VM, say) skip missed polls rather than bursting.
            next_start = max(next_start, time.monotonic())
            if self._loop_wait(self._stop, max(next_start - time.monotonic(), 0.0)):
                break

    def _usage_loop(self, usage: UsageWatcher) -> None:
        while not self._stop.is_set():
            try:
                usage.poll_if_due()
            except ShutdownRequested:
                break
            if self._loop_wait(self._stop, usage.seconds_until_due()):
                break

    def reload(self) -> list[str]:
        """Re-read the files the exporter runs on (SIGHUP); returns what changed."""
        reloaded = [self.api_key.reload()]
        if self.web_config is not None:
            reloaded.append(self.web_config.reload())
        if self.reaper is not None:
            reloaded.append(self.reaper.reload())
        changes = [change for change in reloaded if change is not None]
        if not changes:
            log.info("reload: nothing changed")
        return changes

    def request_stop(self) -> None:
        """Ask the loops to end (safe from a signal handler); ``stop()`` does the rest."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stop() is called; True if it was."""
        return self._stop.wait(timeout)

    def close(self) -> None:
        """Release the API connections and the poll's fetching threads (no poll under way)."""
        self.poller.close()
        self.client.close()

    def stop(self, grace: float = 3.0) -> None:
        """Stop polling and serving; an in-flight request gets ``grace`` seconds."""
        self._stop.set()
        threads = [
            t
            for t in (
                self._poll_thread,
                self._usage_thread,
                self._web_config_thread,
                self._reaper_thread,
            )
            if t is not None
        ]
        for thread in threads:
            thread.join(timeout=grace)
        if self._server is not None:
            self._server.stop()
        if not any(thread.is_alive() for thread in threads):
            self.close()
