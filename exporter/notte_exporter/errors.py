"""Why a poll can fail, and the exception that carries the reason.

Every failure the exporter meets while talking to the Notte API ends up as an ``ApiError``
with one ``FailureReason``; the reason is both the label of
``notte_exporter_poll_failures_total`` and the first word of the log line, so that an
operator can go from an alert to the cause without reading code.

    ApiError
      reason=invalid_key       the key file holds something that is not a key (never sent)
      reason=unauthorized      401: the key is wrong, revoked or expired
      reason=forbidden         403: the key may not list sessions
      reason=rate_limited      429 after the retry budget
      reason=server_error      5xx and 529 after the retry budget
      reason=timeout           connect/read timeouts, or the poll's time budget ran out
      reason=network           connection refused/reset, DNS, TLS, truncated bodies
      reason=invalid_response  not JSON, not the documented shape, or a runaway has_next
      reason=other             any other status (e.g. 404, 422), or an unexpected error in
                               the exporter itself (``unexpected``), rendering /metrics included

Advice goes with the reason (``ADVICE``) unless the error knows better: a 404, an HTML page
or JSON that is no session listing at all means the URL is probably not the Notte API, and
the error then carries ``wrong_url_advice`` instead, naming the flag and the URL. Advice says
what to do; "please report it" is kept for answers that look like Notte's but are not right.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit


class FailureReason(StrEnum):
    INVALID_KEY = "invalid_key"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    NETWORK = "network"
    INVALID_RESPONSE = "invalid_response"
    OTHER = "other"


# What an operator should do about each reason; appended to the one-line log message.
ADVICE: dict[FailureReason, str] = {
    FailureReason.INVALID_KEY: "write the key alone into the key file (one token of printable "
    'ASCII, e.g. echo "$KEY" > file); the exporter reads it again without a restart',
    FailureReason.UNAUTHORIZED: "check that NOTTE_API_KEY (or --notte.api-key-file) holds a "
    "current key from the Notte console",
    FailureReason.FORBIDDEN: "the key is not allowed to list sessions; use a key of the account",
    FailureReason.RATE_LIMITED: "the account's rate limit is exhausted; raise --poll.interval "
    "or lower --sessions.lookup-budget",
    FailureReason.SERVER_ERROR: "the Notte API is failing; the exporter keeps retrying",
    FailureReason.TIMEOUT: "the Notte API is slow or unreachable; check connectivity or raise "
    "--notte.timeout",
    FailureReason.NETWORK: "cannot reach the Notte API; check --notte.api-url, DNS and egress",
    FailureReason.INVALID_RESPONSE: "the API answered something the exporter cannot read; "
    "please report it to the exporter's maintainers",
    FailureReason.OTHER: "unexpected answer from the Notte API; see the message",
}


# What to do about an error no handler expected: the exporter, not the API, is at fault.
UNEXPECTED_ADVICE = (
    "an unexpected error in the exporter; please report it to the exporter's maintainers "
    "(--log.level=debug logs its traceback)"
)


def display_url(url: str) -> str:
    """A URL fit for a message: no user:password, query or fragment, which may hold secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def wrong_url_advice(base_url: str) -> str:
    """Advice for an answer that cannot have come from the Notte API."""
    return (
        f"{display_url(base_url)} does not look like the Notte API; check --notte.api-url "
        "(the API's base URL, e.g. https://api.notte.cc, without /sessions)"
    )


class ApiError(Exception):
    """A request to the Notte API failed for good (after any retries)."""

    def __init__(
        self,
        reason: FailureReason,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        advice: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        # What to do, when this error knows better than its reason's ADVICE.
        self.advice = advice if advice is not None else ADVICE[reason]
        self.status = status
        # Worth another attempt (connection trouble, 429, 5xx), and after how long if the
        # API said so.
        self.transient = transient
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class ShutdownRequested(Exception):  # noqa: N818 - not an error: the operator asked to stop
    """Raised out of a wait (a retry's backoff) when the exporter is stopping.

    Not an ``ApiError`` and not an ``OSError``: nothing failed, so the poll is neither
    counted as failed nor logged as one; the poll loop ends.
    """


def describe(exc: BaseException) -> str:
    """An exception as one line: its type and message, whitespace collapsed.

    Not cut short: a cut could split the key in two, and redaction (applied by whoever shows
    the text) would then miss the half that remains.
    """
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def unexpected(exc: Exception) -> ApiError:
    """An exception no handler expected, as the failure it causes (reason ``other``)."""
    return ApiError(FailureReason.OTHER, describe(exc), advice=UNEXPECTED_ADVICE)
