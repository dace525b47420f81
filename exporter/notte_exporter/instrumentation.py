"""The exporter's own metrics: how its polls and API requests go.

These are events of the exporter itself (not data proxied from Notte), so they are ordinary
prometheus_client counters and histograms, registered in the registry the daemon passes in
(never the global one) with every known label set created at start-up, so that rates and
alerts work from the first scrape.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from notte_exporter.errors import FailureReason

ENDPOINT_LIST = "/sessions"
ENDPOINT_GET = "/sessions/{session_id}"
ENDPOINT_USAGE = "/usage"
# The one write endpoint, called only by the reaper (absent from ENDPOINTS: its series
# appear with its first request, so an exporter without a reaper shows none).
ENDPOINT_STOP = "/sessions/{session_id}/stop"
ENDPOINTS = (ENDPOINT_LIST, ENDPOINT_GET, ENDPOINT_USAGE)

# A poll is a few paged requests: fast when healthy, up to the poll budget when retrying.
POLL_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
REQUEST_DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class RateLimit:
    """The rate-limit headers of the latest API response that carried them."""

    limit: float | None
    remaining: float | None
    reset_timestamp: float | None


class ExporterMetrics:
    """Counters and histograms about polls and API requests."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.polls = Counter(
            "notte_exporter_polls",
            "Polls of the Notte API attempted since the exporter started.",
            registry=registry,
        )
        self.poll_failures = Counter(
            "notte_exporter_poll_failures",
            "Polls that failed since the exporter started, by reason.",
            ["reason"],
            registry=registry,
        )
        self.poll_duration = Histogram(
            "notte_exporter_poll_duration_seconds",
            "Time a poll took, from its first request to its snapshot, retries included.",
            buckets=POLL_DURATION_BUCKETS,
            registry=registry,
        )
        self.invalid_sessions = Counter(
            "notte_exporter_invalid_sessions",
            "Session items of API responses that could not be read and were skipped.",
            registry=registry,
        )
        self.api_requests = Counter(
            "notte_api_requests",
            "HTTP requests made to the Notte API, by endpoint and status code "
            '("error" when no response arrived).',
            ["endpoint", "code"],
            registry=registry,
        )
        self.api_request_duration = Histogram(
            "notte_api_request_duration_seconds",
            "Duration of HTTP requests to the Notte API, by endpoint.",
            ["endpoint"],
            buckets=REQUEST_DURATION_BUCKETS,
            registry=registry,
        )
        self.api_retries = Counter(
            "notte_api_retries",
            "Requests to the Notte API retried after a transient failure, by endpoint.",
            ["endpoint"],
            registry=registry,
        )
        self.throttled_polls = Counter(
            "notte_exporter_throttled_polls",
            "Polls that read pages one at a time and spaced their requests out, because the "
            "API's X-RateLimit-Remaining was below the requests they expected to make.",
            registry=registry,
        )
        self.read_ahead = Gauge(
            "notte_exporter_poll_read_ahead",
            "Pages of the live listing the last poll could ask for ahead of the one it was "
            "reading: up to --notte.concurrency, as many as the API's latency calls for; 0 "
            "when it read one page at a time (an API that answers faster than a page is "
            "read, or a rate limit running low).",
            registry=registry,
        )
        self.rate_limit_wait = Counter(
            "notte_exporter_rate_limit_wait_seconds",
            "Time requests waited, before any 429, to stay within the API's rate limit.",
            registry=registry,
        )
        for reason in FailureReason:
            self.poll_failures.labels(reason=reason.value)
        for endpoint in ENDPOINTS:
            self.api_request_duration.labels(endpoint=endpoint)
            self.api_retries.labels(endpoint=endpoint)
        self._lock = threading.Lock()
        self._rate_limit = RateLimit(None, None, None)
        # Children by (endpoint, code): a few endpoints times the status codes seen.
        self._request_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def count_request(self, endpoint: str, code: str, seconds: float) -> None:
        """One request made: counted and timed.

        Each label set's children are looked up once: ``labels()`` costs as much as the
        increment and the observation together, and a poll makes a hundred requests.
        """
        children = self._request_children.get((endpoint, code))
        if children is None:
            children = self._request_children[(endpoint, code)] = (
                self.api_requests.labels(endpoint=endpoint, code=code),
                self.api_request_duration.labels(endpoint=endpoint),
            )
        requests, duration = children
        requests.inc()
        duration.observe(seconds)

    def record_rate_limit(self, rate_limit: RateLimit) -> None:
        with self._lock:
            known = self._rate_limit
            if (
                rate_limit.reset_timestamp == known.reset_timestamp
                and rate_limit.remaining is not None
                and known.remaining is not None
                and rate_limit.remaining > known.remaining
            ):
                # Pages read in parallel answer out of order: within one window the
                # lowest count is the latest, whichever response brought it last.
                return
            self._rate_limit = rate_limit

    def with_own_rate_limit(self) -> ExporterMetrics:
        """The same counters, with a rate limit of its own: for the client of a named key.

        Whether each key has a window of its own is unconfirmed (notte-api.md), so a named
        key's answers neither show in the account's ``notte_api_rate_limit_*`` nor decide
        whether the account's polls slow down; its own client paces itself by them.
        """
        twin = copy.copy(self)
        twin._lock = threading.Lock()
        twin._rate_limit = RateLimit(None, None, None)
        return twin

    @property
    def rate_limit(self) -> RateLimit:
        with self._lock:
            return self._rate_limit
