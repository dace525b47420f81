"""Wires the parts into a running exporter: one pipeline per account (pipeline.py: client,
tracker, poller, collectors, and the reaper when its policy file is given), the server,
and the loops that drive them.

Each account's poll loop runs on its own thread and the HTTP server on others; they share
only the published state. An account's polls run one after another on a fixed schedule
(each poll's budget is shorter than the interval), so they can never overlap; the accounts'
loops are independent, so one account's failure, slowness or 401 never delays another's
polls. Each poll thread publishes the exposition of every account's latest poll, one
thread at a time. The usage reads (``GET /usage``) run
on a thread and schedule of their own, so a slow or failing ``/usage`` never delays a poll;
what they read is published with the next poll (usage changes over minutes, polls come
every few seconds), so that an account's poll thread stays the only one that reads its registry:
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
from datetime import datetime
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
from notte_exporter.accounts import Account
from notte_exporter.api.client import NotteClient
from notte_exporter.errors import (
    UNEXPECTED_ADVICE,
    FailureReason,
    ShutdownRequested,
    describe,
    display_url,
)
from notte_exporter.instrumentation import ExporterMetrics
from notte_exporter.keys import ApiKey
from notte_exporter.metrics.accounts import AccountsCollector
from notte_exporter.metrics.exposition import PublishedExposition
from notte_exporter.pipeline import Pipeline, single_account
from notte_exporter.polling.lifecycle import LifecycleTracker
from notte_exporter.polling.poller import Poller, utc_now
from notte_exporter.polling.state import ExporterState, PollStatus
from notte_exporter.polling.usage import UsageWatcher
from notte_exporter.settings import Settings, key_source
from notte_exporter.web import statuspage
from notte_exporter.web.messages import Handler
from notte_exporter.web.routes import Routes
from notte_exporter.web.server import IDLE_TIMEOUT, WebServer

if TYPE_CHECKING:
    from notte_exporter.reaper.reaper import Reaper
    from notte_exporter.web.config import LiveWebConfig

log = logging.getLogger(__name__)

# The *_created series double the size of the exposition and nothing here reads them:
# counters reset only when the process restarts, which process_start_time_seconds shows.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Where the key comes from under --demo, as the status page says it.
DEMO_KEY_SOURCE = "a throwaway key of the simulator (--demo)"
# How the loops wait between rounds: up to the seconds given, True once the exporter stops.
LoopWait = Callable[[threading.Event, float], bool]


class Exporter:
    """One exporter instance: everything but process-level concerns (signals, exit codes).

    Without ``accounts`` it watches the one account of ``api_key`` (and ``api_url``, else
    the settings'); with them (``--config.file``), every account, each with a pipeline, a
    poll loop and a usage loop of its own, and ``api_key`` and ``api_url`` are unused.
    """

    def __init__(
        self,
        settings: Settings,
        api_key: ApiKey | None,
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
        accounts: tuple[Account, ...] | None = None,
    ) -> None:
        self.settings = settings
        self._idle_timeout = idle_timeout
        if accounts is None:
            if api_key is None:
                raise ValueError("an exporter watches the account of api_key, or accounts")
            accounts = (single_account(settings, api_key, api_url),)
        elif not accounts:
            raise ValueError("accounts must name at least one account")
        self.accounts = accounts
        self._clock = clock
        self.started_at = clock()
        # Checked now, so that a broken file stops start-up (WebConfigError) with every problem.
        self.web_config: LiveWebConfig | None = None
        if settings.web_config_file:
            # Imported only here and in start(): without a web config the process never loads
            # YAML, bcrypt or the web config's models (about 1.4 MB resident).
            from notte_exporter.web.config import LiveWebConfig  # noqa: PLC0415

            self.web_config = LiveWebConfig(settings.web_config_file)
        # The one redaction step (see redaction.py) for every text this exporter serves:
        # every key of every account shares the process's one Secrets.
        self.redact = accounts[0].key.redact
        self._stop = threading.Event()
        # Tests inject one that ends each wait when told to, to run the loops round by round.
        self._loop_wait = loop_wait
        # Each account's poll thread publishes: one at a time, so renders never interleave.
        self._publish_lock = threading.Lock()
        # The render failure last logged, so that one that repeats at every poll is logged once.
        self._render_failure: str | None = None
        # A broken reaper policy file stops start-up here (ReaperConfigError).
        self.pipelines = tuple(
            Pipeline(
                settings,
                account,
                sleep=sleep if sleep is not None else self._interruptible_sleep,
                transport=transport,
                clock=clock,
                usage_clock=usage_clock,
                thread_cpu=thread_cpu,
                mode=self.mode,
            )
            for account in accounts
        )
        # What polls change, rendered once per poll; apart from the per-process series
        # (prometheus_client's process, platform and GC collectors), which change all the
        # time and are read at each scrape (see metrics/exposition.py).
        self._union: AccountsCollector | None = None
        if self.multi:
            self._union = AccountsCollector(
                [(p.name, p.registry) for p in self.pipelines], redact=self.redact
            )
            self.registry = CollectorRegistry(auto_describe=True)
            self.registry.register(self._union)
        else:
            self.registry = self.pipelines[0].registry
        self.process_registry: CollectorRegistry | None = None
        if process_metrics and not settings.web_disable_exporter_metrics:
            self.process_registry = CollectorRegistry(auto_describe=True)
            ProcessCollector(registry=self.process_registry)
            PlatformCollector(registry=self.process_registry)
            GCCollector(registry=self.process_registry)
        # Rendered now too, so that scrapes before the first poll ends see notte_up 0.
        self.published = PublishedExposition(self.registry, self.process_registry)
        self.health = AccountsHealth(tuple(p.state for p in self.pipelines))
        self._loop_threads: list[threading.Thread] = []
        self._web_config_thread: threading.Thread | None = None
        self._server: WebServer | None = None

    @property
    def multi(self) -> bool:
        """Whether the accounts come from ``--config.file``: series carry ``account``."""
        return self.accounts[0].keyed

    @property
    def _single(self) -> Pipeline:
        assert not self.multi, "single mode only: with --config.file, see pipelines"
        return self.pipelines[0]

    # The parts of the one pipeline of single mode, as tests and the catalogue reach them.
    @property
    def api_key(self) -> ApiKey:
        return self._single.account.key

    @property
    def state(self) -> ExporterState:
        return self._single.state

    @property
    def metrics(self) -> ExporterMetrics:
        return self._single.metrics

    @property
    def tracker(self) -> LifecycleTracker:
        return self._single.tracker

    @property
    def client(self) -> NotteClient:
        return self._single.client

    @property
    def poller(self) -> Poller:
        return self._single.poller

    @property
    def usage(self) -> UsageWatcher | None:
        return self._single.usage

    @property
    def reaper(self) -> Reaper | None:
        return self._single.reaper

    @property
    def mode(self) -> str:
        """``demo`` when the data is simulated, else ``live``: said on /metrics and the page."""
        return "demo" if self.settings.demo else "live"

    def status_page(self) -> str:
        """The status page at ``/``, as of now."""
        settings = self.settings
        pipelines = self.pipelines
        first = pipelines[0]
        return statuspage.render(
            statuspage.StatusView(
                version=__version__,
                python_version=platform.python_version(),
                started_at=self.started_at,
                now=self._clock(),
                demo=settings.demo,
                telemetry_path=settings.web_telemetry_path,
                api_url=display_url(first.client.base_url),
                key_source=DEMO_KEY_SOURCE if settings.demo else key_source(settings),
                poll_interval=settings.poll_interval,
                poll_timeout=settings.effective_poll_timeout,
                page_size=settings.notte_page_size,
                lookup_budget=settings.sessions_lookup_budget,
                sessions_limit=settings.sessions_limit,
                detail_limit=settings.sessions_detail_limit,
                polls=first.state.recent_polls,
                snapshot=first.state.snapshot,
                reaper=first.reaper.view() if first.reaper is not None else None,
                accounts=tuple(self._account_view(p) for p in pipelines) if self.multi else (),
            )
        )

    def _account_view(self, pipeline: Pipeline) -> statuspage.AccountView:
        account = pipeline.account
        return statuspage.AccountView(
            name=account.name,
            api_url=display_url(pipeline.client.base_url),
            key_source=DEMO_KEY_SOURCE if self.settings.demo else account.key.source,
            sessions_limit=account.sessions_limit,
            polls=pipeline.state.recent_polls,
            snapshot=pipeline.state.snapshot,
            reaper=pipeline.reaper.view() if pipeline.reaper is not None else None,
            keys=self._key_rows(pipeline),
        )

    @staticmethod
    def _key_rows(pipeline: Pipeline) -> tuple[statuspage.KeyRow, ...]:
        """The named keys of an account: their live sessions at the last successful poll,
        and whether their last listing worked."""
        if pipeline.attribution is None:
            return ()
        snapshot = pipeline.state.snapshot
        live: dict[str, int] = {}
        if snapshot is not None and snapshot.active_by_key is not None:
            for (_, key), count in snapshot.active_by_key.items():
                live[key] = live.get(key, 0) + count
        last_poll = pipeline.state.last_success
        return tuple(
            statuspage.KeyRow(
                name=name,
                live_sessions=live.get(name, 0) if snapshot is not None else None,
                up=up,
                last_poll=last_poll,
            )
            for name, up in pipeline.attribution.key_status().items()
        )

    def _interruptible_sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise ShutdownRequested

    def poll_once(self) -> PollStatus:
        """Poll every account, read usage if it is due, then publish (for --once, tests, the
        catalogue); returns the first account's outcome (see ``poll_all``)."""
        return self.poll_all()[0]

    def poll_all(self) -> tuple[PollStatus, ...]:
        """Poll every account once, one after another; each outcome, in the accounts' order."""
        return tuple(
            self._poll_and_publish(pipeline, read_usage=True) for pipeline in self.pipelines
        )

    def _poll_and_publish(self, pipeline: Pipeline, *, read_usage: bool = False) -> PollStatus:
        """One poll of ``pipeline``, then publish; the daemon's loop leaves usage to its own
        thread.

        Raises only ShutdownRequested, and what breaks the exporter's own clock: whatever
        else goes wrong ends this poll as a failure, the poll (``Pipeline.poll``), recording
        its outcome and publishing alike.
        """
        status = pipeline.poll()
        if read_usage and pipeline.usage is not None:
            pipeline.usage.poll_if_due()
        with self._publish_lock:
            status = self._publish(pipeline, status)
        pipeline.state.poll_published()
        return status

    def _render(self, pipeline: Pipeline) -> None:
        """Render ``/metrics`` with ``pipeline``'s latest poll (and every other account's)."""
        if self._union is not None:
            self._union.read(pipeline.name)
        self.published.publish()

    def _publish(self, pipeline: Pipeline, status: PollStatus) -> PollStatus:
        """Render ``/metrics`` for the poll that ended as ``status``; what it counts as then.

        A publish that raises changes nothing a scrape gets (``PublishedExposition.publish``
        and ``AccountsCollector.read`` are all or nothing). A poll that succeeded then fails
        after all (reason ``other``, counted once) and is published again, so that scrapes
        see it: ``notte_up`` 0 and the failure counted. If that render fails too,
        ``/metrics`` keeps the last poll it could render, whose success timestamp then ages
        (``NotteExporterStale``).
        """
        try:
            self._render(pipeline)
        except Exception as exc:
            failed = self._render_failed(pipeline, status, exc)
        else:
            if self._render_failure is not None:
                log.info("rendering /metrics works again", extra={"fields": {"outcome": "success"}})
                self._render_failure = None
            return status
        try:
            self._render(pipeline)
        except Exception:
            log.debug("the failed poll could not be published either", exc_info=True)
        return failed

    def _render_failed(self, pipeline: Pipeline, status: PollStatus, exc: Exception) -> PollStatus:
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
            pipeline.metrics.poll_failures.labels(reason=FailureReason.OTHER.value).inc()
            pipeline.state.replace_last_poll(failed)
        log.debug("rendering /metrics failed", exc_info=exc)
        fields = pipeline.fields(outcome="failure", reason=FailureReason.OTHER.value)
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
            self.health,
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
        for pipeline in self.pipelines:
            self._start_loops(pipeline)
        if web_config is not None:
            # Looks at the web config's files once a second, so that requests never do.
            self._web_config_thread = threading.Thread(
                target=web_config.watch, args=(self._stop,), name="web-config", daemon=True
            )
            self._web_config_thread.start()
        return f"{self._server.url}{self.settings.web_telemetry_path}"

    def _start_loops(self, pipeline: Pipeline) -> None:
        """The account's poll loop, usage loop and reaper policy watch, each on its thread,
        so that one account's slowness or failure never delays another's."""

        def thread_name(loop: str) -> str:
            return f"{loop}-{pipeline.name}" if self.multi else loop

        def start(name: str, target: Callable[[], None]) -> None:
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._loop_threads.append(thread)
            thread.start()

        start(
            thread_name("poll"),
            lambda: self._run_loop(pipeline, "poll", lambda: self._poll_loop(pipeline)),
        )
        usage = pipeline.usage
        if usage is not None:
            start(
                thread_name("usage"),
                lambda: self._run_loop(pipeline, "usage", lambda: self._usage_loop(usage)),
            )
        reaper = pipeline.reaper
        if reaper is not None:
            # Looks at the policy file once a second: an edit applies from the next poll.
            start(thread_name("reaper-config"), lambda: reaper.watch(self._stop))

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.port

    @property
    def urls(self) -> list[str]:
        """The base URL of every listen address."""
        assert self._server is not None, "start() first"
        return self._server.urls

    def _run_loop(self, pipeline: Pipeline, kind: str, loop: Callable[[], None]) -> None:
        """Run ``loop`` on this thread until shutdown; if it ends before, fail ``/healthz``.

        Whatever ends it is caught here, BaseException included, and said in one log line:
        threading's default hook would print a raw traceback to stderr instead, and the
        exporter would go on serving its last poll as if nothing had happened.
        """
        name = f"{kind} loop of account {pipeline.name}" if self.multi else f"{kind} loop"
        try:
            loop()
        except BaseException as exc:
            if self._stop.is_set():
                log.debug("the %s ended while stopping", name, exc_info=exc)
                return
            log.debug("the %s stopped", name, exc_info=exc)
            reason = f"the {name} stopped: {describe(exc)}"
        else:
            if self._stop.is_set():
                return
            reason = f"the {name} stopped"
        log.error(
            "%s; /healthz fails from now on, so that the exporter is restarted",
            reason,
            extra={"fields": pipeline.fields(loop=kind)},
        )
        pipeline.state.loop_stopped(reason)

    def _poll_loop(self, pipeline: Pipeline) -> None:
        interval = self.settings.poll_interval
        next_start = time.monotonic()
        while not self._stop.is_set():
            try:
                self._poll_and_publish(pipeline)
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
        """Re-read the files the exporter runs on (SIGHUP): every account's key files and
        reaper policy, and the web config; returns what changed."""
        changes = [change for pipeline in self.pipelines for change in pipeline.reload()]
        if self.web_config is not None:
            change = self.web_config.reload()
            if change is not None:
                changes.append(change)
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
        """Release the API connections and the polls' fetching threads (no poll under way)."""
        for pipeline in self.pipelines:
            pipeline.close()

    def stop(self, grace: float = 3.0) -> None:
        """Stop polling and serving; an in-flight request gets ``grace`` seconds."""
        self._stop.set()
        threads = [*self._loop_threads]
        if self._web_config_thread is not None:
            threads.append(self._web_config_thread)
        for thread in threads:
            thread.join(timeout=grace)
        if self._server is not None:
            self._server.stop()
        if not any(thread.is_alive() for thread in threads):
            self.close()


class AccountsHealth:
    """What ``/healthz`` and ``/readyz`` say, over every account's state.

    Unhealthy as soon as any account's loop has stopped. Ready, with one account, once a
    poll has succeeded, as always; with several (``--config.file``), once every account
    has finished a poll, successful or not, so that one failing account does not hide the
    others from Prometheus (``notte_up{account}`` says which failed).
    """

    def __init__(self, states: tuple[ExporterState, ...]) -> None:
        self._states = states

    @property
    def unhealthy(self) -> str | None:
        reasons = [reason for state in self._states if (reason := state.unhealthy) is not None]
        return "; ".join(reasons) or None

    @property
    def unready(self) -> str | None:
        if len(self._states) == 1:
            return self._states[0].unready
        waiting = sum(1 for state in self._states if state.last_poll is None)
        if waiting:
            return f"{waiting} of {len(self._states)} accounts have not finished a poll yet"
        return None
