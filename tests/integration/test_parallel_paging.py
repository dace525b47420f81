"""Paging in parallel against the simulator: exact answers, and no more than one extra request.

Each account is first polled once (one page at a time: nothing is known yet), then changed,
then polled again with --notte.concurrency 4; the requests of that second poll are counted
against the pages a one-by-one read needs, and the sessions counted against the account.

How far a poll asks ahead follows the API's latency, measured as each request's time less
the CPU its thread spent on it. ``ApiLatency`` is the thread CPU clock the exporter is
given: it follows the wall clock and runs back ``seconds`` at each reading, so every
request seems to have waited that long for the API, whatever the simulator took.
"""

import itertools
import threading
import time

import pytest

from notte_exporter.instrumentation import RateLimit
from notte_exporter.simulator import Fault
from support import sample

PAGE_SIZE = 10


class ApiLatency:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._readings = itertools.count()

    def __call__(self) -> float:
        return time.monotonic() - next(self._readings) * self.seconds


def slow_api() -> ApiLatency:
    return ApiLatency(1.0)


def live_pages(api) -> list[int]:
    return [
        int(r.query["page"])
        for r in api.requests
        if r.path == "/sessions" and r.query["only_active"] == "true"
    ]


def active(exporter) -> float:
    return sum(
        s.value
        for f in exporter.registry.collect()
        if f.name == "notte_sessions_active"
        for s in f.samples
    )


def polled_once(api, account, make_exporter, sessions: int, *, lookup_budget: int, latency):
    """An exporter that has polled an account of ``sessions`` live sessions once (one page
    at a time: nothing is known yet), with the requests of that poll forgotten."""
    for _ in range(sessions):
        account.start_session()
    exporter = make_exporter(
        notte_page_size=PAGE_SIZE, sessions_lookup_budget=lookup_budget, thread_cpu=latency
    )
    assert exporter.poll_once().ok
    assert live_pages(api) == list(range(1, -(-sessions // PAGE_SIZE) + 1))
    api.clear_requests()
    return exporter


@pytest.fixture
def paged(api, account, make_exporter):
    """100 live sessions (10 pages), behind an API slower than reading a page."""
    return polled_once(api, account, make_exporter, 100, lookup_budget=0, latency=slow_api())


@pytest.mark.parametrize(
    ("change", "pages", "extra"),
    [(0, 10, 0), (+35, 14, 0), (-5, 10, 0), (-10, 9, 0), (-45, 6, 1), (-99, 1, 1)],
    ids=["steady", "growing", "fewer-same-pages", "shrunk-a-page", "shrinking", "almost-empty"],
)
def test_a_parallel_poll_is_exact_and_makes_at_most_one_extra_request(
    api, account, paged, change: int, pages: int, extra: int
) -> None:
    if change > 0:
        for _ in range(change):
            account.start_session()
    else:
        for session_id in account.session_ids()[:-change]:
            account.stop(session_id)
    assert paged.poll_once().ok
    asked = live_pages(api)
    assert set(range(1, pages + 1)) <= set(asked)
    assert len(asked) == len(set(asked)) == pages + extra
    assert active(paged) == 100 + change


def history_pages(api) -> list[int]:
    return [
        int(r.query["page"])
        for r in api.requests
        if r.path == "/sessions" and r.query["only_active"] == "false"
    ]


@pytest.fixture
def scanning(api, account, make_exporter):
    """35 live sessions (4 pages) and a lookup budget, behind an API slower than reading."""
    return polled_once(api, account, make_exporter, 35, lookup_budget=5, latency=slow_api())


def test_a_parallel_poll_asks_for_the_history_page_once_along_with_the_listing(
    api, scanning
) -> None:
    assert scanning.poll_once().ok
    assert sorted(live_pages(api)) == [1, 2, 3, 4]
    assert history_pages(api) == [1]


def test_a_listing_rejected_on_its_first_page_asks_for_no_history(api, scanning) -> None:
    api.faults.push(Fault.status(401, times=2))  # page 1 and the probe, sent together
    assert not scanning.poll_once().ok
    assert history_pages(api) == []


def test_the_first_poll_reads_one_page_at_a_time(api, account, make_exporter) -> None:
    for _ in range(35):
        account.start_session()
    exporter = make_exporter(notte_page_size=PAGE_SIZE, sessions_lookup_budget=0)
    assert exporter.poll_once().ok
    assert live_pages(api) == [1, 2, 3, 4]


def test_concurrency_one_pages_one_by_one_as_before(api, account, make_exporter) -> None:
    for _ in range(35):
        account.start_session()
    exporter = make_exporter(
        notte_page_size=PAGE_SIZE, sessions_lookup_budget=0, notte_concurrency=1
    )
    assert exporter.poll_once().ok
    assert exporter.poll_once().ok
    assert live_pages(api) == [1, 2, 3, 4] * 2


def test_a_low_rate_limit_makes_a_poll_sequential_and_paced(
    api, account, clock, make_exporter, sleeps
) -> None:
    for _ in range(50):
        account.start_session()
    api.rate_limit = 14  # a window of 1 s on the account's clock, which stands still
    exporter = make_exporter(
        notte_page_size=PAGE_SIZE, sessions_lookup_budget=0, thread_cpu=slow_api()
    )
    assert exporter.poll_once().ok  # 5 pages: 9 requests left in the window
    assert exporter.poll_once().ok  # 5 more, in parallel: 4 left
    assert sample(exporter, "notte_exporter_throttled_polls_total") == 0
    assert sleeps == []
    api.clear_requests()
    exporter.poll_once()  # expects 5 pages with 4 left: one at a time, spaced out
    assert sample(exporter, "notte_exporter_throttled_polls_total") == 1
    assert live_pages(api)[:4] == [1, 2, 3, 4]
    # Each waits its share of what is left of the window: 1 s over the requests left + 1.
    assert sleeps[:5] == [pytest.approx(1 / n) for n in (5, 4, 3, 2, 1)]
    waited = sample(exporter, "notte_exporter_rate_limit_wait_seconds_total")
    assert waited is not None
    assert waited >= sum(sleeps[:5]) - 1e-9


def test_answers_arriving_out_of_order_keep_the_lowest_remaining_of_a_window(make_exporter):
    metrics = make_exporter().metrics
    metrics.record_rate_limit(RateLimit(100, 7, 1000))
    metrics.record_rate_limit(RateLimit(100, 9, 1000))  # sent earlier, answered later
    assert metrics.rate_limit == RateLimit(100, 7, 1000)
    metrics.record_rate_limit(RateLimit(100, 99, 1060))  # a new window starts afresh
    assert metrics.rate_limit == RateLimit(100, 99, 1060)


def test_an_api_slower_than_reading_a_page_gets_every_page_the_concurrency_allows_ahead(
    api, paged
) -> None:
    assert paged.poll_once().ok
    assert sample(paged, "notte_exporter_poll_read_ahead") == 4


@pytest.fixture
def fast(api, account, make_exporter):
    """100 live sessions (10 pages), behind an API that answers at once."""
    return polled_once(api, account, make_exporter, 100, lookup_budget=0, latency=ApiLatency(0))


def test_an_api_that_answers_faster_than_a_page_is_read_is_read_one_page_at_a_time(
    api, fast
) -> None:
    assert fast.poll_once().ok
    assert live_pages(api) == list(range(1, 11))
    assert sample(fast, "notte_exporter_poll_read_ahead") == 0


def test_reading_one_page_at_a_time_makes_no_extra_request_on_a_shrinking_account(
    api, account, fast
) -> None:
    for session_id in account.session_ids()[:45]:
        account.stop(session_id)
    assert fast.poll_once().ok
    assert live_pages(api) == list(range(1, 7))
    assert active(fast) == 55


def test_an_api_that_slows_down_gets_pages_asked_ahead_again(api, account, make_exporter) -> None:
    for _ in range(100):
        account.start_session()
    latency = ApiLatency(0.0)
    exporter = make_exporter(
        notte_page_size=PAGE_SIZE, sessions_lookup_budget=0, thread_cpu=latency
    )
    assert exporter.poll_once().ok
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_exporter_poll_read_ahead") == 0
    latency.seconds = 1.0
    assert exporter.poll_once().ok  # still one at a time: it learns the API's new latency
    assert exporter.poll_once().ok
    assert sample(exporter, "notte_exporter_poll_read_ahead") == 4


def test_closing_the_exporter_lets_its_fetching_threads_go(paged) -> None:
    before = set(threading.enumerate())
    assert paged.poll_once().ok  # in parallel: the threads outlive the poll
    fetching = [thread for thread in threading.enumerate() if thread not in before]
    assert fetching
    paged.close()
    for thread in fetching:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in fetching)
