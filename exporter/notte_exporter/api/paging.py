"""Reading every page of a listing, several at once where that costs the API nothing extra.

A listing says only ``has_next``, never how many pages it has, so reading in parallel means
guessing, and a wrong guess spends the rate limit the account shares with its agents. The
guess is the previous poll's page count ``E`` and is checked before it is trusted:

1. page 1 (always needed) and the probe, page ``E - 1``, go out together;
2. the probe has a next page: pages ``2..E`` go out in order, never more than ``window``
   (the concurrency) asked and not yet read, and pages past ``E`` are followed one by one
   while ``has_next`` says so (a growing account);
3. the probe is the last page: pages ``2..E - 2`` go out (the account shrank by one page);
4. the probe is empty: the account shrank more, and the rest is read one page at a time.

So a poll makes exactly the requests a sequential one makes, or one more (the empty probe
of case 4), as long as the listing holds still while it is read.

The answer is what a sequential read would return: pages are consumed strictly in order,
the first page without ``has_next`` ends the listing (later answers are dropped), and every
check a sequential read makes (an empty page claiming ``has_next``, the page cap) is made
in the same place. Any failure fails the whole listing; requests not yet sent are cancelled.

How many pages to ask ahead follows the API's latency (``pages_ahead``): enough that the
reader never waits longer for a page than it takes to read one, and none at all when the
API answers faster than that. Then pages are read one at a time on the caller's thread:
threads that fetch while it reads would take the GIL from it for nothing (on loopback, a
poll cost more CPU with them and was no faster).

Threads, not asyncio: the client, its retries (tenacity) and its injected sleeps are
synchronous and stay that way; a handful of threads blocked in I/O is all the parallelism
needed. The threads only fetch (``fetch``); the caller's thread reads each page
(``read``, validation: CPU under the GIL) as it consumes them in order. Threads that take
turns at CPU work cost more than the work: reading on the fetching threads made a poll
cost more CPU than reading its pages one at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, wait
from typing import Any, Generic, TypeVar

from notte_exporter.api.models import SessionPage
from notte_exporter.errors import ApiError, FailureReason
from notte_exporter.settings import flag_name

Fetched = TypeVar("Fetched")
Page = TypeVar("Page", bound="SessionPage[Any]")

# Below this many expected pages there is nothing to overlap: page 1 and the probe coincide.
_SMALLEST_PARALLEL = 3


def pages_ahead(latency: float, read: float, limit: int) -> int:
    """Pages to ask ahead of the one being read, at most ``limit``; 0 is one at a time.

    ``latency`` is what a request waits for the API (not the CPU it costs here), ``read``
    what reading a page takes, both typical values (medians). With ``k`` pages asked ahead
    the reader waits ``latency - k * read`` per page, so ``latency // read`` pages are
    enough to keep that under one page's reading (a pipeline as deep as the round trip,
    and no deeper). Nothing measured yet (``read`` of 0) asks ``limit`` ahead.
    """
    if read <= 0:
        return limit
    return max(0, min(limit, int(latency // read)))


def read_listing(
    fetch: Callable[[int], Fetched],
    read: Callable[[Fetched, int], Page],
    keep: Callable[[Page], object],
    *,
    pool: Executor | None,
    window: int,
    expected: int,
    max_pages: int,
    page_size: int,
) -> int:
    """Hands pages 1..P of a listing to ``keep``, in order; returns P, the first page
    without ``has_next``.

    ``fetch(n)`` gets page ``n`` on a thread of ``pool`` (None: one page at a time, here);
    ``read(fetched, n)`` reads it on this thread, and ``keep`` takes each page of the
    listing once, in order, as soon as it is known to belong to it: a caller that keeps
    only what it needs of each page never holds the whole listing. A failure raises after
    ``keep`` had the pages before it. At most ``window`` pages are requested ahead of the
    one being read (the pool's size is what makes sense): against a fast API the threads
    would otherwise fetch the whole listing before it is read, holding every answer at once
    and taking the GIL from the reader for nothing.
    """
    expected = min(expected, max_pages)
    if pool is None or expected < _SMALLEST_PARALLEL:
        return _read_in_order(fetch, read, keep, None, {}, max_pages, page_size)
    # Page 1 and the probe go out together, whatever the window.
    ahead = _Ahead(pool, fetch, max(window, 2))
    try:
        probe = expected - 1
        ahead.request([1, probe])
        found = read(ahead.take(probe).result(), probe)
        if found.has_next:
            rest = range(2, expected + 1)
        elif found.is_empty:
            rest = range(0)
        else:
            rest = range(2, probe)
        ahead.request([page for page in rest if page != probe])
        return _read_in_order(fetch, read, keep, ahead, {probe: found}, max_pages, page_size)
    finally:
        ahead.cancel()


class _Ahead(Generic[Fetched]):
    """The pages asked of the pool: in flight or answered, and those still to ask, in order."""

    def __init__(self, pool: Executor, fetch: Callable[[int], Fetched], window: int) -> None:
        self._pool = pool
        self._fetch = fetch
        self._window = window
        self._futures: dict[int, Future[Fetched]] = {}
        self._queue: deque[int] = deque()

    def request(self, pages: Iterable[int]) -> None:
        self._queue.extend(pages)
        self._top_up()

    def take(self, page: int) -> Future[Fetched]:
        """Page ``page``'s answer, given up by the window (once it came, another is asked)."""
        future = self._futures.pop(page)
        wait([future])  # answered (or failed: the caller's .result() raises it)
        self._top_up()
        return future

    def __contains__(self, page: int) -> bool:
        return page in self._futures

    def _top_up(self) -> None:
        while self._queue and len(self._futures) < self._window:
            page = self._queue.popleft()
            self._futures[page] = self._pool.submit(self._fetch, page)

    def cancel(self) -> None:
        """Leave nothing behind: requests not yet sent are dropped, those in flight waited for."""
        self._queue.clear()
        for future in self._futures.values():
            future.cancel()
        wait(self._futures.values())


def _read_in_order(
    fetch: Callable[[int], Fetched],
    read: Callable[[Fetched, int], Page],
    keep: Callable[[Page], object],
    ahead: _Ahead[Fetched] | None,
    known: dict[int, Page],
    max_pages: int,
    page_size: int,
) -> int:
    for number in range(1, max_pages + 1):
        if number in known:
            page = known.pop(number)
        elif ahead is not None and number in ahead:
            # Taken out, so that each answer's bytes are freed once read.
            page = read(ahead.take(number).result(), number)
        else:
            page = read(fetch(number), number)
        keep(page)
        if not page.has_next:
            return number
        if page.is_empty:
            raise ApiError(
                FailureReason.INVALID_RESPONSE,
                f"GET /sessions page {number} is empty but says has_next",
            )
    raise ApiError(
        FailureReason.INVALID_RESPONSE,
        f"GET /sessions still had has_next after {max_pages} pages of {page_size}",
        advice=f"raise {flag_name('notte_max_pages')} if the account has more than "
        f"{max_pages * page_size} live sessions at once",
    )
