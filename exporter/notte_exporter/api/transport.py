"""What the client needs from HTTP and httpx does not give: a deadline for a whole request,
and a cap on the size of an answer.

httpx bounds each socket operation, never a request as a whole: an upstream that sends a
byte every few seconds, in its headers or in its body, holds a request for as long as it
likes, each read well within its timeout. ``DeadlineBackend`` is an httpcore network backend
(the extension point httpcore documents for this layer) that cuts every connect, read and
write short at the deadline of the request under way on its thread (``until``); the
operation then fails as a timeout like any other. A request runs on one thread from its
first byte to its last, so a context variable carries its deadline; outside ``until``
nothing is bounded beyond the timeouts httpx was given. Name resolution happens before any
socket exists and is not bounded here.

An answer is read whole (``read_body``) but never past ``limit`` bytes, counted after
decompression while it is read: a body that inflates a thousandfold is given up as soon as
it passes the limit, having held no more than that. Only gzip and deflate are asked for
(``ACCEPT_ENCODING``) and read; httpx would also decode brotli or zstd whenever their
packages happen to be installed, and none of its decoders can stop part way.
"""

from __future__ import annotations

import ssl
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpcore
import httpx

ACCEPT_ENCODING = "gzip, deflate"
_INFLATED = frozenset({"gzip", "x-gzip", "deflate"})
# zlib reads a gzip or a zlib header, whichever the body has: servers disagree on "deflate".
_GZIP_OR_ZLIB = zlib.MAX_WBITS | 32

_DEADLINE: ContextVar[float | None] = ContextVar("notte_request_deadline", default=None)

Bound = Callable[[float | None, type[Exception]], float | None]


@contextmanager
def until(deadline: float) -> Iterator[None]:
    """Bound every socket operation of this thread's requests by ``deadline`` (monotonic)."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


class DeadlineBackend(httpcore.NetworkBackend):
    """``inner``'s connections, each operation ending by the deadline ``until`` set."""

    def __init__(self, inner: httpcore.NetworkBackend, monotonic: Callable[[], float]) -> None:
        self._inner = inner
        self._monotonic = monotonic

    def _bound(self, timeout: float | None, expired: type[Exception]) -> float | None:
        deadline = _DEADLINE.get()
        if deadline is None:
            return timeout
        left = deadline - self._monotonic()
        if left <= 0:
            raise expired("the request's deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, self._bound(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream, self._bound)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, self._bound(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _DeadlineStream(stream, self._bound)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, bound: Bound) -> None:
        self._inner = inner
        self._bound = bound

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.start_tls(
            ssl_context, server_hostname, self._bound(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(stream, self._bound)

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


def bound_by_deadlines(
    transport: httpx.BaseTransport, monotonic: Callable[[], float]
) -> httpx.BaseTransport:
    """``transport``, its connections bounded by ``until`` when it is httpx's own.

    httpx takes no network backend; the httpcore pool it builds does, and reads it for each
    connection it opens, so it is swapped before the first one. A transport of another kind
    (a test's ``MockTransport``) is returned as it is.
    """
    if isinstance(transport, httpx.HTTPTransport):
        pool = transport._pool
        pool._network_backend = DeadlineBackend(pool._network_backend, monotonic)
    return transport


class AnswerTooLarge(Exception):  # noqa: N818 - named for what the answer is
    """An answer that holds more than the limit, once decompressed."""


class UnreadableEncoding(Exception):  # noqa: N818 - named for what the answer is
    """An answer in an encoding that was not asked for, or that does not decode."""


def read_body(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed ``response``, decompressed, of at most ``limit`` bytes.

    Raises ``AnswerTooLarge`` as soon as more has arrived, ``UnreadableEncoding`` for a
    body that cannot be decompressed; network failures and timeouts as httpx raises them.
    """
    if response.is_stream_consumed:
        # Answered from memory (a test's MockTransport): already whole and decoded.
        if len(response.content) > limit:
            raise AnswerTooLarge
        return response.content
    inflate = _inflater(response.headers.get("Content-Encoding", ""))
    chunks: list[bytes] = []
    size = 0
    for raw in response.iter_raw():
        chunk = inflate(raw, limit + 1 - size)
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _inflater(encoding: str) -> Callable[[bytes, int], bytes]:
    """What turns a raw chunk into at most ``most`` (>= 1) bytes of the body."""
    codings = [c for c in (c.strip().lower() for c in encoding.split(",")) if c != "identity"]
    codings = [c for c in codings if c]
    if not codings:
        return _as_sent
    if len(codings) > 1 or codings[0] not in _INFLATED:
        raise UnreadableEncoding("a Content-Encoding it did not ask for (only gzip or deflate)")
    inflater = zlib.decompressobj(_GZIP_OR_ZLIB)

    def inflate(raw: bytes, most: int) -> bytes:
        # max_length stops inflating there: input beyond it waits in unconsumed_tail, and
        # reaching it means the body is over the limit anyway.
        try:
            return inflater.decompress(raw, most)
        except zlib.error:
            raise UnreadableEncoding(f"a {codings[0]} body that does not decompress") from None

    return inflate


def _as_sent(raw: bytes, most: int) -> bytes:
    return raw
