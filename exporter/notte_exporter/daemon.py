"""Wires the parts into a running exporter: client, tracker, poller, collectors, server.

The poll loop runs on its own thread and the HTTP server on others; they share only the
published state. Polls run one after another on a fixed schedule (each poll's budget is
shorter than the interval), so they can never overlap. The usage reads (``GET /usage``) run
on a thread and schedule of their own, so a slow or failing ``/usage`` never delays a poll;
what they read is published with the next poll (usage changes over minutes, polls come
every few seconds), so that the poll thread stays the only one that renders ``/metrics``.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from prometheus_client import (
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    disable_created_metrics,
)

from . import __version__, statuspage
from .client import NotteClient
from .collector import SessionCollector
from .config import Settings, key_source
from .errors import ShutdownRequested, display_url
from .exchange import Handler
from .exposition import PublishedExposition
from .instrumentation import ExporterMetrics
from .keys import ApiKey
from .labels import BROWSER_TYPES, BoundedLabel
from .lifecycle import LifecycleMetrics, LifecycleTracker
from .perprocess import LeanGCCollector, LeanProcessCollector, ProcessRegistry, ReadOnce
from .poller import PollConfig, Poller, utc_now
from .server import IDLE_TIMEOUT, WebServer
from .state import ExporterState, PollStatus
from .usage import UsageCollector, UsageWatcher
from .web import Routes

if TYPE_CHECKING:
    from .webconfig import LiveWebConfig

log = logging.getLogger(__name__)

# The *_created series double the size of the exposition and nothing here reads them:
# counters reset only when the process restarts, which process_start_time_seconds shows.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Live statuses the API is known to send; others it adds later get their own label value.
LIVE_STATUS_LABELS = ("active", "authenticating")


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
            from .webconfig import LiveWebConfig  # noqa: PLC0415

            self.web_config = LiveWebConfig(settings.web_config_file)
        # The one redaction step (see redaction.py) for every text this exporter serves.
        self.redact = api_key.redact
        # What polls change, rendered once per poll; apart from the per-process series,
        # which change all the time and are rendered at each scrape (see exposition.py).
        self.registry = CollectorRegistry(auto_describe=True)
        self.process_registry: CollectorRegistry | None = None
        if process_metrics and not settings.web_disable_exporter_metrics:
            self.process_registry = ProcessRegistry(auto_describe=True)
            # prometheus_client's process, platform and GC series, read with fewer system
            # calls and rendered through templates (perprocess.py).
            for collector in (
                LeanProcessCollector(),
                ReadOnce(PLATFORM_COLLECTOR),
                LeanGCCollector(),
            ):
                self.process_registry.register(collector)
        self.state = ExporterState()
        self._stop = threading.Event()
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
            retries=settings.notte_retries,
            transport=transport,
            # Backoff waits end early on shutdown, so SIGTERM never waits out a Retry-After.
            sleep=sleep if sleep is not None else self._interruptible_sleep,
            # Retry-After dates and rate-limit resets are read on the exporter's own clock.
            wall_clock=lambda: clock().timestamp(),
        )
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
        )
        self.registry.register(
            SessionCollector(
                self.state,
                browser_label.values,
                lambda: self.metrics.rate_limit,
                self.tracker.stats,
                sessions_limit=settings.sessions_limit,
                redact=self.redact,
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
            self.registry.register(UsageCollector(lambda: watcher.state))
        # Rendered now too, so that scrapes before the first poll ends see notte_up 0.
        self.published = PublishedExposition(self.registry, self.process_registry)
        self._poll_thread: threading.Thread | None = None
        self._usage_thread: threading.Thread | None = None
        self._web_config_thread: threading.Thread | None = None
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
            )
        )

    def _interruptible_sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise ShutdownRequested

    def poll_once(self) -> PollStatus:
        """Poll, read usage if it is due, then publish (for --once, tests, the catalogue)."""
        return self._poll_and_publish(read_usage=True)

    def _poll_and_publish(self, *, read_usage: bool = False) -> PollStatus:
        """One poll, then publish; the daemon's loop leaves usage to its own thread."""
        status = self.poller.poll()
        if read_usage and self.usage is not None:
            self.usage.poll_if_due()
        self.published.publish()
        self.state.poll_published()
        return status

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
            from .access import Guard  # noqa: PLC0415 - see the web config in __init__

            routes = Guard(routes, web_config)
        self._server = WebServer(
            routes,
            self.settings.listen_addresses,
            max_requests=self.settings.web_max_requests,
            tls=web_config.tls_context if web_config is not None and web_config.tls_on else None,
            idle_timeout=self._idle_timeout,
        )
        self._server.start()
        self._poll_thread = threading.Thread(target=self._poll_loop, name="poll", daemon=True)
        self._poll_thread.start()
        if self.usage is not None:
            self._usage_thread = threading.Thread(
                target=self._usage_loop, args=(self.usage,), name="usage", daemon=True
            )
            self._usage_thread.start()
        if web_config is not None:
            # Looks at the web config's files once a second, so that requests never do.
            self._web_config_thread = threading.Thread(
                target=web_config.watch, args=(self._stop,), name="web-config", daemon=True
            )
            self._web_config_thread.start()
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
            if self._stop.wait(max(next_start - time.monotonic(), 0.0)):
                break

    def _usage_loop(self, usage: UsageWatcher) -> None:
        while not self._stop.is_set():
            try:
                usage.poll_if_due()
            except ShutdownRequested:
                break
            if self._stop.wait(usage.seconds_until_due()):
                break

    def reload(self) -> list[str]:
        """Re-read the files the exporter runs on (SIGHUP); returns what changed."""
        reloaded = [self.api_key.reload()]
        if self.web_config is not None:
            reloaded.append(self.web_config.reload())
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
            for t in (self._poll_thread, self._usage_thread, self._web_config_thread)
            if t is not None
        ]
        for thread in threads:
            thread.join(timeout=grace)
        if self._server is not None:
            self._server.stop()
        if not any(thread.is_alive() for thread in threads):
            self.close()
