"""Reading a listing in parallel: the same pages as one by one, at most one request more."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from notte_exporter.api.models import SessionPage
from notte_exporter.api.paging import pages_ahead, read_listing
from notte_exporter.errors import ApiError, FailureReason
from support import parse_one


class Listing:
    """A listing of ``pages`` pages that records what was asked, and can block some pages."""

    def __init__(self, pages: int, *, empty_has_next_at: int | None = None) -> None:
        self.pages = pages
        self.empty_has_next_at = empty_has_next_at
        self.asked: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self.gate: threading.Barrier | None = None
        self.gated: set[int] = set()

    def __call__(self, number: int) -> SessionPage:
        with self._lock:
            self.asked.append(number)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None and number in self.gated:
                self.gate.wait(timeout=10)
            if number == self.empty_has_next_at:
                return SessionPage([], [], has_next=True)
            if number > self.pages:
                return SessionPage([], [], has_next=False)
            return SessionPage([parse_one(f"p{number}")], [], has_next=number < self.pages)
        finally:
            with self._lock:
                self.in_flight -= 1


def ids(pages: list[SessionPage]) -> list[str]:
    return [session["session_id"] for page in pages for session in page.sessions]


def read(
    listing: Listing, expected: int, concurrency: int = 4, max_pages: int = 50
) -> list[SessionPage]:
    """The pages ``read_listing`` hands over, in the order it hands them."""
    kept: list[SessionPage] = []
    with ThreadPoolExecutor(max(concurrency, 1)) as threads:
        count = read_listing(
            listing,
            as_fetched,
            kept.append,
            pool=threads if concurrency > 1 else None,
            window=concurrency,
            expected=expected,
            max_pages=max_pages,
            page_size=1,
        )
    assert count == len(kept)
    return kept


def as_fetched(page: SessionPage, number: int) -> SessionPage:
    return page


@pytest.mark.parametrize(
    ("expected", "actual"),
    [(10, 10), (10, 13), (10, 9), (10, 6), (10, 1), (3, 3), (3, 2), (2, 5), (1, 4), (30, 30)],
    ids=["steady", "growing", "shrunk-a-page", "shrunk", "shrunk-to-one", "three", "three-to-two",
         "two-growing", "first-poll", "thirty"],
)  # fmt: skip
def test_the_pages_are_those_a_sequential_read_returns(expected: int, actual: int) -> None:
    parallel, sequential = Listing(actual), Listing(actual)
    assert ids(read(parallel, expected)) == ids(read(sequential, expected, concurrency=1))
    assert ids(read(Listing(actual), expected)) == [f"p{n}" for n in range(1, actual + 1)]
    assert sorted(sequential.asked) == list(range(1, actual + 1))
    assert len(parallel.asked) <= len(sequential.asked) + 1
    assert len(set(parallel.asked)) == len(parallel.asked)


@pytest.mark.parametrize(("expected", "actual"), [(10, 10), (10, 13), (10, 9)])
def test_a_steady_growing_or_one_page_smaller_account_costs_no_extra_request(
    expected: int, actual: int
) -> None:
    listing = Listing(actual)
    read(listing, expected)
    assert sorted(listing.asked) == list(range(1, actual + 1))


def test_up_to_concurrency_pages_are_in_flight_at_once() -> None:
    listing = Listing(12)
    listing.gate = threading.Barrier(4)
    listing.gated = {2, 3, 4, 5}  # they return only once all four are in flight together
    read(listing, 12, concurrency=4)
    assert listing.most_in_flight == 4


def test_one_page_ahead_still_asks_for_page_one_and_the_probe_together() -> None:
    listing = Listing(10)
    kept: list[SessionPage] = []
    with ThreadPoolExecutor(4) as threads:
        read_listing(listing, as_fetched, kept.append, pool=threads, window=1, expected=10,
                     max_pages=50, page_size=1)  # fmt: skip
    assert ids(kept) == [f"p{n}" for n in range(1, 11)]
    assert sorted(listing.asked) == list(range(1, 11))
    assert listing.most_in_flight <= 2


def test_concurrency_one_reads_pages_in_order() -> None:
    listing = Listing(6)
    read(listing, 6, concurrency=1)
    assert listing.asked == [1, 2, 3, 4, 5, 6]
    assert listing.most_in_flight == 1


def test_an_empty_page_that_says_has_next_fails_the_listing_as_one_by_one() -> None:
    with pytest.raises(ApiError, match="page 4 is empty but says has_next"):
        read(Listing(8, empty_has_next_at=4), 8)


def test_the_page_cap_holds_whatever_was_expected() -> None:
    listing = Listing(100)
    with pytest.raises(ApiError, match="after 5 pages") as raised:
        read(listing, 100, max_pages=5)
    assert "--notte.max-pages" in raised.value.advice
    assert max(listing.asked) == 5


def test_a_failed_page_fails_the_listing_and_sends_nothing_more() -> None:
    asked: list[int] = []

    def fetch(number: int) -> SessionPage:
        asked.append(number)
        if number == 9:  # the probe of an expected 10
            raise ApiError(FailureReason.SERVER_ERROR, "boom")
        return SessionPage([parse_one(f"p{number}")], [], has_next=True)

    with pytest.raises(ApiError, match="boom"), ThreadPoolExecutor(4) as pool:
        read_listing(
            fetch,
            as_fetched,
            [].append,
            pool=pool,
            window=4,
            expected=10,
            max_pages=50,
            page_size=1,
        )
    assert sorted(asked) == [1, 9]


def test_pages_are_fetched_on_the_pool_but_read_in_order_on_the_callers_thread() -> None:
    listing = Listing(10)
    fetchers: set[threading.Thread] = set()
    readers: list[tuple[int, threading.Thread]] = []

    def fetch(number: int) -> SessionPage:
        fetchers.add(threading.current_thread())
        return listing(number)

    def record(page: SessionPage, number: int) -> SessionPage:
        readers.append((number, threading.current_thread()))
        return page

    with ThreadPoolExecutor(4) as pool:
        read_listing(
            fetch, record, [].append, pool=pool, window=4, expected=10, max_pages=50, page_size=1
        )
    assert threading.current_thread() not in fetchers
    assert {thread for _, thread in readers} == {threading.current_thread()}
    # The probe (page 9) is read first, to decide what to ask for; then pages in order.
    assert [number for number, _ in readers] == [9, 1, 2, 3, 4, 5, 6, 7, 8, 10]


def test_each_page_is_handed_over_before_the_next_is_read() -> None:
    events: list[str] = []

    def record(page: SessionPage, number: int) -> SessionPage:
        events.append(f"read {number}")
        return page

    def keep(page: SessionPage) -> None:
        events.append(f"keep {page.sessions[0]['session_id']}")

    with ThreadPoolExecutor(4) as pool:
        read_listing(
            Listing(5), record, keep, pool=pool, window=4, expected=5, max_pages=50, page_size=1
        )
    # The probe (page 4) is read first but handed over only in its place: nothing past the
    # page being read is ever held, and a page the listing ends before is never handed over.
    assert events == ["read 4", "read 1", "keep p1", "read 2", "keep p2", "read 3", "keep p3",
                      "keep p4", "read 5", "keep p5"]  # fmt: skip


def test_no_more_than_the_window_is_asked_ahead_of_the_page_being_read() -> None:
    listing = Listing(20)
    furthest_ahead: list[int] = []

    def record(page: SessionPage, number: int) -> SessionPage:
        asked = [n for n in list(listing.asked) if n != 19]  # 19: the probe of an expected 20
        furthest_ahead.append(max(asked) - number)
        return page

    with ThreadPoolExecutor(3) as pool:
        read_listing(
            listing, record, [].append, pool=pool, window=3, expected=20, max_pages=50,
            page_size=1,
        )  # fmt: skip
    # Against a fast API, answers read late would otherwise pile up: all 20 at once.
    assert max(furthest_ahead[1:]) <= 3
    assert sorted(listing.asked) == list(range(1, 21))


@pytest.mark.parametrize(
    ("latency", "read", "ahead"),
    [
        (0.0001, 0.0003, 0),  # answers faster than a page is read: one at a time
        (0.0003, 0.0003, 1),
        (0.0010, 0.0003, 3),
        (0.0500, 0.0003, 4),  # a real network: as many as allowed
        (0.0500, 0.0, 4),  # nothing measured yet
        (-0.0001, 0.0003, 0),  # clock jitter on an API that answered at once
    ],
)
def test_pages_asked_ahead_keep_the_wait_for_a_page_under_reading_one(
    latency: float, read: float, ahead: int
) -> None:
    assert pages_ahead(latency, read, limit=4) == ahead
