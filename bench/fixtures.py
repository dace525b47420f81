"""What the benchmarks run against: a simulated account, its pages, and exporters wired to it.

Two ways to feed an exporter, so the API's cost can be told apart from the exporter's own:

* ``SimulatorServer`` over loopback HTTP: the whole path, simulator included;
* ``StaticPages``, an ``httpx.MockTransport`` answering from pages rendered once in advance:
  no socket, no simulator, only what the exporter itself does with the bytes.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from notte_exporter.api.models import LiveSession, parse_live_page, parse_page
from notte_exporter.daemon import Exporter
from notte_exporter.keys import ApiKey
from notte_exporter.labels import BoundedLabel
from notte_exporter.metrics.exposition import KEEP_FORMAT_POLLS
from notte_exporter.polling.snapshot import Snapshot, SnapshotBuilder
from notte_exporter.settings import Settings
from notte_exporter.simulator import BROWSER_TYPES, ManualClock, SimulatedAccount

KEY = "bench-key"
PAGE_SIZE = 100
# MockTransport never resolves this host; it only has to be a valid URL for Settings.
OFFLINE_URL = "http://notte.bench.invalid"
_BROWSER_WEIGHTS = (60, 20, 12, 5, 3)
# What Prometheus 3 asks for by default (OpenMetrics, with UTF-8 names allowed).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)
_SESSIONS_PREFIX = "/sessions/"

Handler = Callable[[httpx.Request], httpx.Response]


def quiet_logs() -> None:
    """Keep per-poll log lines (expected in churn scenarios) out of the report."""
    logging.getLogger("notte_exporter").setLevel(logging.ERROR)


def make_exporter(
    clock: ManualClock,
    *,
    api_url: str = OFFLINE_URL,
    transport: httpx.BaseTransport | None = None,
    listen: str = "127.0.0.1:0",
    process_metrics: bool = False,
    concurrency: int = 4,
) -> Exporter:
    """An exporter as the daemon builds it, on the given clock (process metrics optional)."""
    settings = Settings(
        notte_api_url=api_url,
        notte_api_key=SecretStr(KEY),
        web_listen_address=listen,
        poll_interval=3600,  # background polls (start()) must not fire during a measurement
        poll_timeout=600,  # a slow simulator must not turn a measurement into a failed poll
        notte_page_size=PAGE_SIZE,
        notte_max_pages=1000,
        notte_concurrency=concurrency,
        # The usage reads run on their own thread and schedule: they would only blur the
        # poll and scrape measurements (and the count of API requests made by scrapes).
        collector_usage=False,
    )
    return Exporter(
        settings,
        ApiKey(SecretStr(KEY)),
        transport=transport,
        clock=clock.now,
        sleep=lambda seconds: None,
        process_metrics=process_metrics,
    )


def poll_interval(exporter: Exporter) -> Callable[[], None]:
    """What a deployment's exporter does per poll: a poll, and one scrape as Prometheus makes
    it, gzipped. A poll renders the formats scrapers asked for lately, so without scrapes it
    would render none.

    Called once for every poll a format is kept (``KEEP_FORMAT_POLLS``) before it returns,
    so that it is measured as it runs for days: the formats the first polls render as if
    asked for (text, OpenMetrics) are no longer rendered.
    """

    def poll_and_scrape() -> None:
        if not exporter.poll_once().ok:
            raise RuntimeError("a benchmark poll failed")
        exporter.published.reply(PROMETHEUS_ACCEPT, "gzip")

    for _ in range(KEEP_FORMAT_POLLS + 1):
        poll_and_scrape()
    return poll_and_scrape


def decode_each(bodies: Sequence[bytes]) -> Callable[[], None]:
    """The floor every CPU target is measured against: ``json.loads`` of each body, dropped."""

    def decode() -> None:
        for body in bodies:
            json.loads(body)

    return decode


def parse_each(live: Sequence[bytes], history: Sequence[bytes] = ()) -> Callable[[], None]:
    """Each body read as a poll reads it (``parse_live_page`` for the live listing's pages,
    ``parse_page`` for the history's), and dropped once read, as a poll drops it."""

    def parse() -> None:
        for body in live:
            parse_live_page(body)
        for body in history:
            parse_page(body)

    return parse


def summarise_pages(pages: Sequence[Sequence[LiveSession]], now: datetime) -> Snapshot:
    """The same, added a page at a time as a poll adds them."""
    summary = SnapshotBuilder(
        taken_at=now,
        idle_threshold=timedelta(seconds=60),
        overdue_grace=timedelta(seconds=60),
        detail_limit=20,
    )
    for page in pages:
        summary.add(page)
    return summary.snapshot(
        browser_label=BoundedLabel(BROWSER_TYPES),
        status_label=BoundedLabel(("active", "authenticating")),
    )


def session_fields(rng: random.Random, clock: ManualClock, index: int) -> dict[str, Any]:
    """A plausible live session: mixed browsers and features, traffic, staggered ages."""
    now = clock.now()
    created = now - timedelta(seconds=rng.uniform(0, 600))
    return {
        "browser_type": rng.choices(BROWSER_TYPES, _BROWSER_WEIGHTS)[0],
        "created_at": created,
        "last_accessed_at": created + (now - created) * rng.random(),
        "proxies": rng.random() < 0.3,
        "solve_captchas": rng.random() < 0.2,
        "use_file_storage": rng.random() < 0.15,
        "web_bot_auth": rng.random() < 0.1,
        "headless": rng.random() >= 0.15,
        "network_request_bytes": rng.randint(0, 5_000_000),
        "network_response_bytes": rng.randint(0, 500_000_000),
        "error": "Navigation timeout of 30000 ms exceeded" if index % 40 == 0 else None,
    }


def render(body: object) -> bytes:
    # The same encoding the simulator's server uses for its answers.
    return json.dumps(body, default=str).encode()


def json_response(status: int, body: bytes) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"Content-Type": "application/json"})


def account_handler(account: SimulatedAccount) -> Handler:
    """Answer API requests straight from the account, in-process (no socket, no threads)."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith(_SESSIONS_PREFIX):
            try:
                body = account.session(path[len(_SESSIONS_PREFIX) :])
            except KeyError:
                return json_response(404, b'{"detail": "Session not found"}')
            return json_response(200, render(body))
        params = request.url.params
        page = account.page(
            int(params.get("page", "1")),
            int(params.get("page_size", "10")),
            only_active=params.get("only_active", "true") == "true",
        )
        return json_response(200, render(page))

    return handle


@dataclass
class StaticPages:
    """The account's listing at one moment, rendered once; answers like the API would."""

    live_sessions: int
    pages: dict[tuple[bool, int], bytes]
    fallback: Handler
    served: int = field(default=0)
    # Bodies by raw query string: the in-process "server" must cost the exporter's poll as
    # little as possible, and parsing each query would be a sizeable part of a poll's CPU.
    _by_query: dict[bytes, bytes] = field(default_factory=dict, repr=False)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.served += 1
        if request.url.path == "/sessions":
            query = request.url.query
            body = self._by_query.get(query)
            if body is None:
                params = request.url.params
                key = (params.get("only_active") == "true", int(params.get("page", "1")))
                body = self.pages.get(key)
                if body is not None:
                    self._by_query[query] = body
            if body is not None:
                return json_response(200, body)
        return self.fallback(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def live_page_count(self) -> int:
        return sum(1 for only_active, _ in self.pages if only_active)


class Fleet:
    """A simulated account that only grows, so each size reuses the sessions of the last."""

    def __init__(self, seed: int = 1) -> None:
        self.clock = ManualClock()
        # Timeouts are off: the clock stands still during measurements anyway, and the
        # simulator otherwise re-checks every live session's deadlines on every call.
        self.account = SimulatedAccount(
            clock=self.clock, seed=seed, profile=None, enforce_timeouts=False
        )
        self._rng = random.Random(seed)
        self.size = 0

    def grow_to(self, size: int) -> None:
        while self.size < size:
            self.account.start_session(**session_fields(self._rng, self.clock, self.size))
            self.size += 1

    def snapshot_pages(self) -> StaticPages:
        """Render the live listing (every page) and the first page of the full listing."""
        pages: dict[tuple[bool, int], bytes] = {}
        page = 1
        while True:
            body = self.account.page(page, PAGE_SIZE, only_active=True)
            pages[(True, page)] = render(body)
            if not body["has_next"]:
                break
            page += 1
        pages[(False, 1)] = render(self.account.page(1, PAGE_SIZE, only_active=False))
        return StaticPages(self.size, pages, account_handler(self.account))
