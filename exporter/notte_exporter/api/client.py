"""HTTP client of the Notte API: authentication, retries with backoff, error classification.

Every request is bounded twice: by ``timeout`` per attempt and by the caller's ``deadline``
(a ``time.monotonic()`` value) across attempts, so that a poll never outlives its budget.
An attempt's timeout is a deadline for all of it, never later than the caller's: connect,
headers, body and any redirects, however slowly the bytes come (``transport.until``).
Transient failures (connection errors, timeouts, 429, 500, 502, 503, 504, 529) are retried
with exponential backoff and full jitter, or after the delay the API asked for through
``Retry-After`` or ``X-RateLimit-Reset``; anything else fails at once, because repeating a
401 or a 422 only burns the rate limit the account shares with its agents.

tenacity does the waiting: ``wait_random_exponential`` unless the API asked for a delay
(``wait_requested``), and a stop before a wait that would end past the deadline
(``stop_at_deadline``), which re-raises the real cause instead of a timeout. Every request
goes through ``NotteClient.get``, so any endpoint gets the same retries, bounds, metrics
and classification by naming itself there.

Whatever the upstream sends, reading an answer costs bounded memory: at most
``max_response_bytes`` of body, counted decompressed as it arrives (``transport.read_body``);
at most ``MAX_JSON_VALUES`` JSON values in a large body, counted before it is parsed; and a
JSON parser (pydantic-core's, everywhere) that stops at a depth no real answer has. Each
failing is ``invalid_response``, as is a page of more items than the ``page_size`` asked
for. Redirects are followed within the API's origin only (scheme, host and port),
``MAX_REDIRECTS`` at most: an answer from elsewhere would be a stranger's data taken for the
account's, and the key is never sent there.

The rate limit is shared with the account's agents, so the client also stays out of its way
before a 429: ``leaves_room_for`` tells a poll whether the last ``X-RateLimit-Remaining``
covers the requests it expects to make, and while ``paced`` is on every request first waits
its share of the time left until ``X-RateLimit-Reset``, spreading what remains of the window
evenly instead of spending it at once.
"""

from __future__ import annotations

import errno
import functools
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ByteSize, ValidationError
from pydantic_core import from_json
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from notte_exporter import __version__
from notte_exporter.api.models import (
    InvalidItem,
    Item,
    LiveSession,
    NotJsonError,
    Session,
    SessionPage,
    TooManyItemsError,
    UsageReport,
    first_problem,
    parse_live_page,
    parse_page,
    parse_session,
)
from notte_exporter.api.transport import (
    ACCEPT_ENCODING,
    AnswerTooLarge,
    UnreadableEncoding,
    bound_by_deadlines,
    read_body,
    until,
)
from notte_exporter.errors import ApiError, FailureReason, display_url, wrong_url_advice
from notte_exporter.instrumentation import (
    ENDPOINT_GET,
    ENDPOINT_LIST,
    ENDPOINT_STOP,
    ENDPOINT_USAGE,
    ExporterMetrics,
    RateLimit,
)
from notte_exporter.logs import REDACTED
from notte_exporter.settings import flag_name

USER_AGENT = f"notte-exporter/{__version__}"
REQUEST_ORIGIN = "notte-exporter"

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
_MESSAGE_LIMIT = 200
URL_CACHE_SIZE = 1024
# Same-origin redirects followed per attempt: a moved API needs one or two, a loop needs all.
MAX_REDIRECTS = 3
# Reading JSON costs memory per value more than per byte (some 150 bytes a value in
# pydantic-core): 8 MiB of "{}," would take about 450 MB just to be refused. No answer of the
# API comes near this many (a page of 100 sessions holds about 6,000); the values of bodies
# too small to matter are not counted.
MAX_JSON_VALUES = 100_000
_VALUES_COUNTED_FROM = 1024 * 1024

KeyProvider = Callable[[], str]


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer of the API, read whole within the client's bounds."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    reason_phrase: str


class NotteClient:
    """Synchronous client for the endpoints the exporter uses: sessions and usage."""

    def __init__(
        self,
        base_url: str,
        api_key: KeyProvider,
        metrics: ExporterMetrics,
        *,
        max_response_bytes: int,
        timeout: float = 10.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_key = api_key
        self._metrics = metrics
        self._timeout = timeout
        self._max_bytes = max_response_bytes
        self._retries = retries
        self._sleep = sleep
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._base_url = base_url
        self._requests = 0
        self._requests_lock = threading.Lock()
        self.paced = False
        self._retry_policies: dict[int, Retrying] = {}
        self._merged_headers: tuple[str, httpx.Headers] | None = None
        # Bounded: listing URLs are a few per page of the largest listing; ids are many.
        self._url = functools.lru_cache(maxsize=URL_CACHE_SIZE)(self._build_url)
        self._http = _ApiHttpClient(
            monotonic,
            base_url=base_url.rstrip("/"),
            transport=transport,
            # Followed by _attempt instead, once the target's origin is checked (_within_the_api).
            follow_redirects=False,
            headers={
                "User-Agent": USER_AGENT,
                "x-notte-request-origin": REQUEST_ORIGIN,
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    def close(self) -> None:
        self._http.close()

    def leaves_room_for(self, requests: int) -> bool:
        """Whether the API's last word on the rate limit leaves ``requests`` more (unknown: yes)."""
        limit = self._metrics.rate_limit
        if limit.remaining is None or self._window_ended(limit):
            return True
        return limit.remaining >= requests

    def _window_ended(self, limit: RateLimit) -> bool:
        return limit.reset_timestamp is not None and limit.reset_timestamp <= self._wall_clock()

    def _pace(self, deadline: float) -> None:
        """Wait this request's share of the time left in the rate-limit window."""
        limit = self._metrics.rate_limit
        if limit.remaining is None or limit.reset_timestamp is None:
            return
        delay = (limit.reset_timestamp - self._wall_clock()) / (max(limit.remaining, 0) + 1)
        if delay <= 0 or self._monotonic() + delay >= deadline:
            return  # nothing to wait for, or no time to: the API's own answer will decide
        self._metrics.rate_limit_wait.inc(delay)
        self._sleep(delay)

    def fetch_sessions(
        self,
        *,
        page: int,
        page_size: int,
        only_active: bool,
        only_current_token: bool,
        deadline: float,
        retries: int | None = None,
    ) -> Answer:
        """One page of ``GET /sessions``, answered 200 but not read yet (``read_sessions``).

        Apart so that pages fetched on several threads are read on one: reading is CPU
        work under the GIL, and threads taking turns at it cost more than it does.
        """
        params = {
            "page": page,
            "page_size": page_size,
            "only_active": "true" if only_active else "false",
            "only_current_token": "true" if only_current_token else "false",
        }
        return self.get(
            ENDPOINT_LIST, "/sessions", params=params, deadline=deadline, retries=retries
        )

    def read_sessions(self, answer: Answer, page: int, page_size: int) -> SessionPage[Session]:
        """Read a page ``fetch_sessions`` returned for ``page_size``; an ApiError when it is
        not a listing or holds more items than that."""
        return self._read(parse_page, answer, page, page_size)

    def read_live_sessions(
        self, answer: Answer, page: int, page_size: int
    ) -> SessionPage[LiveSession]:
        """The same for a page of the live listing (``models.parse_live_page``)."""
        return self._read(parse_live_page, answer, page, page_size)

    def _read(
        self,
        parse: Callable[[bytes], SessionPage[Item]],
        answer: Answer,
        page: int,
        page_size: int,
    ) -> SessionPage[Item]:
        try:
            result = parse(answer.content)
        except NotJsonError as exc:
            raise _not_json(f"GET {ENDPOINT_LIST}", answer, str(exc)) from None
        except TooManyItemsError as exc:
            raise _too_many_items(page, exc.count, page_size) from None
        except ValidationError as exc:
            raise ApiError(
                FailureReason.INVALID_RESPONSE,
                f"GET /sessions page {page} is not a session listing: {first_problem(exc, 'body')}",
                # A listing with a field wrong is Notte's drift; JSON without any of its
                # fields is some other service.
                advice=None
                if _looks_like_a_listing(answer.content)
                else wrong_url_advice(self._base_url),
            ) from None
        count = len(result.sessions) + len(result.invalid)
        if count > page_size:
            raise _too_many_items(page, count, page_size)
        return result

    def get_session(
        self, session_id: str, *, deadline: float, retries: int | None = 0
    ) -> Session | InvalidItem | None:
        """Return one session's current or final state, or None when the API does not know it."""
        path = f"/sessions/{quote(session_id, safe='')}"
        return _one_session(
            f"GET {ENDPOINT_GET}",
            lambda: self.get(ENDPOINT_GET, path, deadline=deadline, retries=retries),
        )

    def stop_session(self, session_id: str, *, deadline: float) -> Session | InvalidItem | None:
        """``DELETE /sessions/{id}/stop`` (the SDK's ``session_stop``): the session's state
        as the API answers it, or None when the API does not know the session (404).

        Attempted once, never retried: a stop that failed (429, 5xx, no answer) is the
        reaper's to try again at its next poll, with fresh data, and a stop that timed out
        may well have been made.
        """
        path = f"/sessions/{quote(session_id, safe='')}/stop"
        # Not through the URL cache: session ids would push the listing's URLs out of it.
        url = self._build_url(path, ())
        return _one_session(
            f"DELETE {ENDPOINT_STOP}",
            lambda: self._attempt(ENDPOINT_STOP, url, deadline, method="DELETE"),
        )

    def get_usage(self, *, deadline: float) -> UsageReport:
        """The current billing period's usage; a body missing a field it needs fails."""
        answer = self.get(ENDPOINT_USAGE, "/usage", deadline=deadline)
        try:
            return UsageReport.model_validate_json(answer.content)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            if first["type"] == "json_invalid":
                raise _not_json(f"GET {ENDPOINT_USAGE}", answer, first["msg"]) from None
            raise ApiError(
                FailureReason.INVALID_RESPONSE,
                f"GET /usage is not a usage report: {first_problem(exc, 'body')}",
                status=200,
            ) from None

    def deadline_after(self, seconds: float) -> float:
        """The ``deadline`` argument for a request that may take ``seconds``, retries included."""
        return self._monotonic() + seconds

    def get(
        self,
        endpoint: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        deadline: float,
        retries: int | None = None,
    ) -> Answer:
        """GET ``path``, retrying transient failures; a 200 answer or an ApiError.

        ``endpoint`` is the metrics label of the request (a route, never an id);
        ``retries`` overrides the client's default number of retries.
        """
        attempts = (self._retries if retries is None else retries) + 1
        url = self._url(path, tuple((params or {}).items()))
        return self._retrying(attempts)(
            self._attempt, endpoint=endpoint, url=url, deadline=deadline
        )

    def _retrying(self, attempts: int) -> Retrying:
        """The retry policy of a request allowed ``attempts`` attempts, built once.

        Building one per request cost a poll of a hundred pages more than its metrics did;
        what differs per request (endpoint, deadline) is read from the attempt's arguments.
        tenacity keeps a call's state per thread, so threads share a policy. Two threads
        building the same one at once is harmless: either copy does the same.
        """
        retrying = self._retry_policies.get(attempts)
        if retrying is None:
            retrying = self._retry_policies[attempts] = Retrying(
                stop=stop_after_attempt(attempts) | stop_at_deadline(self._monotonic),
                wait=wait_requested(
                    wait_random_exponential(
                        multiplier=BACKOFF_BASE_SECONDS, max=BACKOFF_MAX_SECONDS
                    )
                ),
                retry=retry_if_exception(_is_transient),
                sleep=self._sleep,
                before_sleep=self._count_retry,
                reraise=True,
            )
        return retrying

    def _count_retry(self, state: RetryCallState) -> None:
        self._metrics.api_retries.labels(endpoint=state.kwargs["endpoint"]).inc()

    def _build_url(self, path: str, params: tuple[tuple[str, Any], ...]) -> httpx.URL:
        # httpx parses a URL three times per request when given a path and parameters; a poll
        # asks for the same hundred URLs every time, so each is parsed once (``_url``).
        return self._http.build_request("GET", path, params=dict(params)).url

    def _headers(self, key: str) -> httpx.Headers:
        """The client's headers with ``key``'s, merged once per key.

        ``httpx.Client.get`` merges the client's headers, cookies and parameters into every
        request anew, a measurable share of what a request costs (docs/benchmarks.md).
        """
        merged = self._merged_headers
        if merged is None or merged[0] != key:
            headers = self._http.headers.copy()
            headers["Authorization"] = f"Bearer {key}"
            merged = self._merged_headers = (key, headers)
        return merged[1]

    def _attempt(
        self, endpoint: str, url: httpx.URL, deadline: float, method: str = "GET"
    ) -> Answer:
        if self.paced:
            self._pace(deadline)
        remaining = deadline - self._monotonic()
        if remaining <= 0:
            raise ApiError(FailureReason.TIMEOUT, "the poll's time budget ran out (--poll.timeout)")
        timeout = min(self._timeout, remaining)
        call = f"{method} {endpoint}"
        request = httpx.Request(
            method,
            url,
            headers=self._headers(self._api_key()),
            extensions={"timeout": httpx.Timeout(timeout).as_dict()},
        )
        # httpx's timeout bounds each read; this bounds the attempt, redirects included.
        with until(self._monotonic() + timeout):
            for _ in range(MAX_REDIRECTS + 1):
                answer, onward = self._exchange(endpoint, request, timeout)
                if onward is None:
                    break
                request = self._within_the_api(call, answer, onward)
            else:
                raise ApiError(
                    FailureReason.INVALID_RESPONSE,
                    f"{call} was redirected more than {MAX_REDIRECTS} times",
                    status=answer.status_code,
                    advice=_REDIRECT_ADVICE,
                )
        self._record_rate_limit(answer.headers)
        if answer.status_code != 200:
            raise self._status_error(call, answer)
        if _is_html(answer):
            raise ApiError(
                FailureReason.INVALID_RESPONSE,
                f"{call} answered 200 with an HTML page, not JSON",
                status=200,
                advice=wrong_url_advice(self._base_url),
            )
        return answer

    def _exchange(
        self, endpoint: str, request: httpx.Request, timeout: float
    ) -> tuple[Answer, httpx.Request | None]:
        """Send ``request``: its answer read whole, and where it redirects to (if it does).

        A redirect's body is left unread: nothing in it is needed.
        """
        call = f"{request.method} {endpoint}"
        started = self._monotonic()
        try:
            response = self._http.send(request, stream=True)
            try:
                onward = response.next_request
                content = b"" if onward is not None else read_body(response, self._max_bytes)
            except (AnswerTooLarge, UnreadableEncoding) as exc:
                self._observe(endpoint, str(response.status_code), started)
                raise self._unreadable(call, response.status_code, exc) from None
            finally:
                response.close()
        except httpx.TransportError as exc:
            self._observe(endpoint, "error", started)
            raise self._transport_error(call, exc, timeout) from None
        self._observe(endpoint, str(response.status_code), started)
        if _may_hold_too_many_values(content):
            raise ApiError(
                FailureReason.INVALID_RESPONSE,
                f"{call} answered {response.status_code} with more JSON values than "
                f"any answer of the Notte API holds (over {MAX_JSON_VALUES:,})",
                status=response.status_code,
            )
        answer = Answer(response.status_code, response.headers, content, response.reason_phrase)
        return answer, onward

    def _transport_error(self, call: str, error: httpx.TransportError, timeout: float) -> ApiError:
        if isinstance(error, httpx.TimeoutException):
            return ApiError(
                FailureReason.TIMEOUT,
                f"{call} did not finish within {timeout:.3g}s",
                transient=True,
            )
        return ApiError(
            FailureReason.NETWORK,
            f"{call} failed: {type(error).__name__}: {error}",
            transient=True,
            advice=_transport_advice(error, self._base_url),
        )

    def _unreadable(self, call: str, status: int, error: Exception) -> ApiError:
        if isinstance(error, AnswerTooLarge):
            limit = ByteSize(self._max_bytes).human_readable()
            flag = flag_name("notte_max_response_bytes")
            return ApiError(
                FailureReason.INVALID_RESPONSE,
                f"{call} answered {status} with more than {limit} ({flag})",
                status=status,
                advice=f"no answer of the Notte API comes near that; if this account's really "
                f"do, raise {flag}",
            )
        return ApiError(
            FailureReason.INVALID_RESPONSE,
            f"{call} answered {status} with {error}",
            status=status,
        )

    def _within_the_api(self, call: str, answer: Answer, onward: httpx.Request) -> httpx.Request:
        """``onward``, where ``answer`` redirects to, if it stays at the API's origin.

        Anywhere else would answer with data nobody authenticated (httpx would not even send
        it the key): the exporter would publish a stranger's numbers as the account's.
        """
        url, api = onward.url, self._http.base_url
        if (url.scheme, url.host, url.port) == (api.scheme, api.host, api.port):
            return onward
        origin = display_url(f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}")
        raise ApiError(
            FailureReason.INVALID_RESPONSE,
            self._without_key(
                f"{call} answered {answer.status_code}, a redirect to another origin "
                f"({origin}), which is not followed"
            ),
            status=answer.status_code,
            advice=_REDIRECT_ADVICE,
        )

    @property
    def requests_made(self) -> int:
        """Requests sent since start (answered or not); a poll reports its own difference."""
        with self._requests_lock:
            return self._requests

    def _observe(self, endpoint: str, code: str, started: float) -> None:
        with self._requests_lock:
            self._requests += 1
        self._metrics.count_request(endpoint, code, max(self._monotonic() - started, 0.0))

    def _record_rate_limit(self, headers: httpx.Headers) -> None:
        values = [
            _number(headers.get(name))
            for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
        ]
        if any(value is not None for value in values):
            self._metrics.record_rate_limit(RateLimit(*values))

    def _without_key(self, text: str) -> str:
        """``text`` without the key, in any case (a host name in a URL is lower-cased)."""
        key = self._api_key()
        return re.sub(re.escape(key), REDACTED, text, flags=re.IGNORECASE) if key else text

    def _status_error(self, call: str, response: Answer) -> ApiError:
        status = response.status_code
        if status == 401:
            reason = FailureReason.UNAUTHORIZED
        elif status == 403:
            reason = FailureReason.FORBIDDEN
        elif status == 429:
            reason = FailureReason.RATE_LIMITED
        elif status >= 500:
            reason = FailureReason.SERVER_ERROR
        else:
            reason = FailureReason.OTHER
        # An API that echoes the credentials back must not make us print them.
        message = self._without_key(_api_message(response))
        return ApiError(
            reason,
            f"{call} answered {status}: {message}",
            status=status,
            transient=status in TRANSIENT_STATUSES,
            retry_after=self._requested_delay(response),
            # The session endpoints always exist: a 404 for them means another server.
            advice=wrong_url_advice(self._base_url) if status == 404 else None,
        )

    def _requested_delay(self, response: Answer) -> float | None:
        """Seconds the API asked us to wait, from Retry-After or (on 429) X-RateLimit-Reset."""
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None:
            seconds = _number(retry_after)
            if seconds is None:
                try:
                    seconds = parsedate_to_datetime(retry_after).timestamp() - self._wall_clock()
                except (TypeError, ValueError):
                    seconds = None
            if seconds is not None:
                return max(seconds, 0.0)
        if response.status_code == 429:
            reset = _number(response.headers.get("X-RateLimit-Reset"))
            if reset is not None:
                return max(reset - self._wall_clock(), 0.0)
        return None


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing the API sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _ApiHttpClient(httpx.Client):
    """httpx's client, without a cookie jar, its connections bounded by ``transport.until``.

    The API authenticates by key, and a cookie kept from one poll to the next (a load
    balancer's, say) would be state nobody asked for. Reading each answer's cookies also
    cost a noticeable share of a poll's CPU (urllib's request objects for every answer).
    Sending and redirecting, httpx reaches its jar through the
    ``cookies`` property only (the jar its ``__init__`` makes is left unused).

    The transports httpx builds itself (the direct one, and one per proxy the environment
    names) come from ``_init_transport`` and ``_init_proxy_transport``, called by its
    ``__init__``: each is bounded there, so that proxies keep working as httpx sets them up.
    """

    _jar = _NoCookies()

    def __init__(self, monotonic: Callable[[], float], **kwargs: Any) -> None:
        self._deadline_clock = monotonic  # read by the _init_* hooks, during __init__
        super().__init__(**kwargs)

    def _init_transport(self, *args: Any, **kwargs: Any) -> httpx.BaseTransport:
        made = super()._init_transport(*args, **kwargs)
        return bound_by_deadlines(made, self._deadline_clock)

    def _init_proxy_transport(self, *args: Any, **kwargs: Any) -> httpx.BaseTransport:
        made = super()._init_proxy_transport(*args, **kwargs)
        return bound_by_deadlines(made, self._deadline_clock)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("the Notte API client keeps no cookies")


class wait_requested(wait_base):  # noqa: N801 - named like tenacity's own waits
    """The delay the API asked for (``ApiError.retry_after``), else ``fallback``'s."""

    def __init__(self, fallback: wait_base) -> None:
        self._fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, ApiError) and error.retry_after is not None:
            return error.retry_after
        return self._fallback(retry_state)


class stop_at_deadline(stop_base):  # noqa: N801 - named like tenacity's own stops
    """Stop when the next wait would end at or past the call's ``deadline`` argument (a
    ``monotonic`` value).

    Waiting would only end in the budget running out: better report the real cause now.
    """

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic

    def __call__(self, retry_state: RetryCallState) -> bool:
        deadline: float = retry_state.kwargs["deadline"]
        return self._monotonic() + retry_state.upcoming_sleep >= deadline


_REDIRECT_ADVICE = (
    f"set {flag_name('notte_api_url')} to the URL the Notte API is served at, not one that "
    "redirects"
)


def _one_session(call: str, send: Callable[[], Answer]) -> Session | InvalidItem | None:
    """The session an endpoint about one session answers with; None for a 404 (unknown)."""
    try:
        answer = send()
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    try:
        # pydantic-core's parser: depth-bounded, where json.loads raises RecursionError.
        return parse_session(from_json(answer.content))
    except ValueError as exc:
        raise _not_json(call, answer, str(exc)) from None


def _not_json(call: str, answer: Answer, why: str) -> ApiError:
    # ``why`` is the JSON parser's, which names a place in the body, never its content.
    return ApiError(
        FailureReason.INVALID_RESPONSE,
        f"{call} answered 200 with a body that is not JSON ({len(answer.content)} bytes; {why})",
        status=200,
    )


def _too_many_items(page: int, count: int, page_size: int) -> ApiError:
    return ApiError(
        FailureReason.INVALID_RESPONSE,
        f"GET /sessions page {page} holds {count} items, more than the {page_size} asked for",
    )


def _is_html(response: Answer) -> bool:
    content_type = response.headers.get("Content-Type", "").lower()
    return "html" in content_type or response.content.lstrip()[:1] == b"<"


def _transport_advice(error: BaseException, base_url: str) -> str:
    """What to do about a request that never got an answer.

    Running out of file descriptors surfaces as a failed connect too, but DNS and egress
    advice would send the operator to the wrong place: the limit is the exporter's own.
    """
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in (errno.EMFILE, errno.ENFILE):
            return (
                "the exporter ran out of file descriptors (too many open connections or "
                "files); raise its open-files limit (ulimit -n, or the container's nofile "
                "limit) or lower --web.max-requests"
            )
        cause = cause.__cause__ or cause.__context__
    return f"cannot reach {display_url(base_url)}; check --notte.api-url, DNS and egress"


def _may_hold_too_many_values(content: bytes) -> bool:
    """Whether ``content`` may hold more than ``MAX_JSON_VALUES`` JSON values, unparsed.

    Every value but the first follows a ``,``, ``:`` or ``[``: counted anywhere (in strings
    too), they bound the values from above, at C speed and without a byte of memory.
    """
    if len(content) <= _VALUES_COUNTED_FROM:
        return False
    marks = content.count(b",") + content.count(b":") + content.count(b"[")
    return marks + 1 > MAX_JSON_VALUES


def _looks_like_a_listing(content: bytes) -> bool:
    try:
        body = from_json(content)
    except ValueError:
        return False
    return isinstance(body, dict) and bool({"items", "has_next"} & body.keys())


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, ApiError) and error.transient


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _api_message(response: Answer) -> str:
    """The API's own words about an error, shortened to one line."""
    try:
        body = from_json(response.content)
    except ValueError:
        text = response.content[: _MESSAGE_LIMIT * 4].decode("utf-8", "replace")
        text = text.strip().replace("\n", " ")
        return text[:_MESSAGE_LIMIT] or response.reason_phrase or "no body"
    if isinstance(body, dict):
        parts = [body.get("message"), body.get("detail")]
        words = [_describe(part) for part in parts if part]
        if words:
            return "; ".join(words)[:_MESSAGE_LIMIT]
    return json.dumps(body)[:_MESSAGE_LIMIT]


def _describe(part: Any) -> str:
    if isinstance(part, list):  # FastAPI validation errors: [{"loc": [...], "msg": ...}]
        return ", ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}"
            if isinstance(item, dict)
            else str(item)
            for item in part
        )
    return str(part)
