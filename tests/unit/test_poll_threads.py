"""A poll's share of the poller's lasting threads: what it asked for ends with it."""

import threading
from concurrent.futures import ThreadPoolExecutor

from notte_exporter.polling.poller import PollThreads


def test_finishing_a_poll_cancels_what_has_not_started_and_waits_for_what_has() -> None:
    release = threading.Event()
    started = threading.Event()

    def running() -> str:
        started.set()
        release.wait()
        return "answered"

    with ThreadPoolExecutor(1) as pool:
        threads = PollThreads(pool)
        under_way = threads.submit(running)
        waiting = threads.submit(lambda: "never sent")
        cancelled = threading.Event()
        waiting.add_done_callback(lambda _: cancelled.set())
        finisher = threading.Thread(target=threads.finish)
        try:
            assert started.wait(timeout=10)
            finisher.start()
            # finish() cancels the request not yet started (a bound, not a wait for luck)...
            assert cancelled.wait(timeout=10)
            assert finisher.is_alive()  # ... and waits for the one under way
        finally:
            release.set()
        finisher.join()
    assert waiting.cancelled()
    assert under_way.result() == "answered"
