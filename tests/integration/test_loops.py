"""A poll can fail; the poller cannot die. And what a scrape, a probe and the log see then.

The daemon's own threads run the loops here, round by round: ``Rounds`` stands in for their
waits between rounds, so a test says when the next round starts and learns when one ended
(its loop is waiting again). Failures are injected where no API could cause them: a
collector that raises while ``/metrics`` is rendered, a clock that raises, a fault in a
loop's wait. Everything is read over loopback HTTP, as Prometheus and Kubernetes would.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from notte_exporter.daemon import Exporter
from notte_exporter.keys import ApiKey
from notte_exporter.logs import configure
from notte_exporter.redaction import REDACTED
from notte_exporter.settings import Settings
from notte_exporter.simulator import ManualClock
from support import API_KEY

# A round ends within this; far above what one takes, so that only a dead loop reaches it.
DEADLINE = 10.0


class Rounds:
    """The loops' waits between rounds, each ended when the test says so.

    A loop is its thread's name (``poll``, ``usage``). Entering a wait ends a round;
    ``next`` lets the loop start one more; ``fail`` makes its next wait raise instead.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._ended: Counter[str] = Counter()
        self._allowed: Counter[str] = Counter()
        self._faults: dict[str, BaseException] = {}

    def __call__(self, stop: threading.Event, seconds: float) -> bool:
        name = threading.current_thread().name
        with self._changed:
            self._ended[name] += 1
            self._changed.notify_all()
            fault = self._faults.pop(name, None)
            if fault is not None:
                raise fault
            while not self._allowed[name]:
                if stop.is_set():
                    return True
                # stop.set() does not notify this condition: look at it now and then.
                self._changed.wait(0.01)
            self._allowed[name] -= 1
        return stop.is_set()

    def next(self, name: str) -> None:
        with self._changed:
            self._allowed[name] += 1
            self._changed.notify_all()

    def fail(self, name: str, fault: BaseException) -> None:
        with self._changed:
            self._faults[name] = fault

    def ended(self, name: str, count: int) -> bool:
        """Wait until loop ``name`` has ended ``count`` rounds; False if it does not."""
        with self._changed:
            return self._changed.wait_for(lambda: self._ended[name] >= count, DEADLINE)

    def run(self, name: str) -> None:
        """Let loop ``name`` run one more round and wait until it has ended."""
        with self._changed:
            ended = self._ended[name]
        self.next(name)
        assert self.ended(name, ended + 1), f"the {name} loop ran no further round"


class FaultyClock:
    """The shared manual clock, which raises ``fault`` at its next readings when armed."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._fault: Exception | None = None
        self._times = 0
        self._thread: str | None = None

    def arm(self, fault: Exception, *, times: int = 1, thread: str | None = None) -> None:
        """Raise ``fault`` at the next ``times`` readings (made on ``thread``, if given)."""
        with self._lock:
            self._fault, self._times, self._thread = fault, times, thread

    def now(self) -> datetime:
        with self._lock:
            here = self._thread is None or threading.current_thread().name == self._thread
            if self._fault is not None and self._times and here:
                self._times -= 1
                raise self._fault
        return self._clock.now()


class Fatal(BaseException):
    """What no ``except Exception`` catches: it ends the thread it is raised on."""


class RaisingCollector:
    """A collector that raises ``fault`` at its next render when armed, else yields nothing."""

    def __init__(self) -> None:
        self.fault: BaseException | None = None

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        fault, self.fault = self.fault, None
        if fault is not None:
            raise fault
        yield from ()


MakeLooping = Callable[..., tuple[Exporter, Rounds, str]]


@pytest.fixture
def faulty_clock(clock: ManualClock) -> FaultyClock:
    return FaultyClock(clock)


@pytest.fixture
def make_looping(
    api, clock: ManualClock, faulty_clock: FaultyClock, sleeps
) -> Iterator[MakeLooping]:
    """Exporters on loopback whose loops run round by round: (exporter, rounds, base URL)."""
    made: list[Exporter] = []

    def make(process_metrics: bool = False, **overrides: Any) -> tuple[Exporter, Rounds, str]:
        values: dict[str, Any] = {
            "notte_api_url": api.url,
            "notte_api_key": SecretStr(API_KEY),
            "notte_retries": 0,
            "notte_timeout": 5.0,
            "collector_usage": False,
            "web_listen_address": "127.0.0.1:0",
        }
        values.update(overrides)
        settings = Settings(**values)
        rounds = Rounds()
        exporter = Exporter(
            settings,
            ApiKey(settings.notte_api_key),
            clock=faulty_clock.now,
            sleep=sleeps,
            process_metrics=process_metrics,
            usage_clock=lambda: clock.now().timestamp(),
            loop_wait=rounds,
        )
        made.append(exporter)
        base = exporter.start().removesuffix("/metrics")
        return exporter, rounds, base

    yield make
    for exporter in made:
        exporter.stop(grace=DEADLINE)


def scraped(base: str, name: str, **labels: str) -> float | None:
    """One sample of ``/metrics`` as a scrape gets it."""
    text = httpx.get(f"{base}/metrics", timeout=DEADLINE).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def listings(api) -> int:
    """Requests the simulated API has had for the live listing."""
    return len([r for r in api.requests if r.query.get("only_active") == "true"])


def until(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds within the deadline (it is looked at every 10 ms)."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def log_to_stderr() -> Iterator[Callable[[], None]]:
    """Turns on the exporter's own logging, to stderr as in production; pytest's after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # Called from the test itself, so that the handler writes to the stderr capfd captures.
    yield lambda: configure("info", "logfmt", ApiKey(SecretStr(API_KEY)).redact)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_a_poll_whose_publish_raises_fails_and_the_next_poll_recovers(api, make_looping) -> None:
    exporter, rounds, base = make_looping()
    broken = RaisingCollector()
    exporter.registry.register(broken)
    assert rounds.ended("poll", 1)
    assert scraped(base, "notte_up") == 1

    broken.fault = OverflowError("int too large to convert to float")
    rounds.run("poll")
    assert scraped(base, "notte_up") == 0
    assert scraped(base, "notte_exporter_poll_failures_total", reason="other") == 1
    assert scraped(base, "notte_exporter_polls_total") == 2

    rounds.run("poll")
    assert listings(api) == 3
    assert scraped(base, "notte_up") == 1
    assert scraped(base, "notte_exporter_polls_total") == 3
    assert scraped(base, "notte_exporter_poll_failures_total", reason="other") == 1


def test_a_poll_whose_publish_raises_is_one_entry_of_the_recent_polls(api, make_looping) -> None:
    exporter, rounds, _ = make_looping()
    broken = RaisingCollector()
    exporter.registry.register(broken)
    assert rounds.ended("poll", 1)
    broken.fault = OverflowError("int too large to convert to float")
    rounds.run("poll")
    failed, succeeded = exporter.state.recent_polls
    assert succeeded.ok
    assert not failed.ok
    assert failed.reason is not None
    assert failed.reason.value == "other"
    assert (
        failed.message
        == "rendering /metrics failed: OverflowError: int too large to convert to float"
    )
    assert "please report it" in failed.advice


@pytest.mark.parametrize("faults", [1, 2], ids=["in-the-poll", "in-its-failure-handling-too"])
def test_a_poll_whose_clock_raises_fails_and_the_next_poll_recovers(
    api, faulty_clock, make_looping, faults: int
) -> None:
    _, rounds, base = make_looping()
    assert rounds.ended("poll", 1)
    faulty_clock.arm(RuntimeError("clock unplugged"), times=faults, thread="poll")
    rounds.run("poll")
    assert scraped(base, "notte_up") == 0
    assert scraped(base, "notte_exporter_poll_failures_total", reason="other") == 1
    rounds.run("poll")
    assert scraped(base, "notte_up") == 1
    assert scraped(base, "notte_exporter_poll_failures_total", reason="other") == 1
    assert listings(api) == 2  # the poll whose clock failed at its start asked nothing


def test_a_usage_read_that_raises_fails_and_the_next_read_recovers(
    api, clock, faulty_clock, make_looping
) -> None:
    _, rounds, base = make_looping(collector_usage=True, usage_interval=300)
    assert rounds.ended("usage", 1)
    assert rounds.ended("poll", 1)
    rounds.run("poll")  # usage read is published with the next poll
    assert scraped(base, "notte_usage_up") == 1

    faulty_clock.arm(RuntimeError("clock unplugged"), thread="usage")
    clock.advance(300)
    rounds.run("usage")
    rounds.run("poll")
    assert scraped(base, "notte_usage_up") == 0
    assert scraped(base, "notte_up") == 1

    clock.advance(300)
    rounds.run("usage")
    rounds.run("poll")
    assert scraped(base, "notte_usage_up") == 1
    assert len([r for r in api.requests if r.path == "/usage"]) == 3


def test_a_stopped_poll_loop_fails_healthz(make_looping) -> None:
    exporter, rounds, base = make_looping()
    broken = RaisingCollector()
    exporter.registry.register(broken)
    assert rounds.ended("poll", 1)
    assert httpx.get(f"{base}/healthz", timeout=DEADLINE).status_code == 200
    broken.fault = Fatal(f"gone, holding {API_KEY}")
    rounds.next("poll")
    assert until(lambda: exporter.state.unhealthy is not None)
    response = httpx.get(f"{base}/healthz", timeout=DEADLINE)
    assert response.status_code == 503
    assert response.text == f"unhealthy: the poll loop stopped: Fatal: gone, holding {REDACTED}\n"


def test_a_stopped_usage_loop_fails_healthz(make_looping) -> None:
    exporter, rounds, base = make_looping(collector_usage=True)
    assert rounds.ended("usage", 1)
    rounds.fail("usage", RuntimeError("scheduler broke"))
    rounds.next("usage")
    assert until(lambda: exporter.state.unhealthy is not None)
    response = httpx.get(f"{base}/healthz", timeout=DEADLINE)
    assert response.status_code == 503
    assert response.text == "unhealthy: the usage loop stopped: RuntimeError: scheduler broke\n"


def test_healthz_stays_up_through_a_shutdown(make_looping) -> None:
    exporter, rounds, _ = make_looping(collector_usage=True)
    assert rounds.ended("poll", 1)
    assert rounds.ended("usage", 1)
    exporter.stop(grace=DEADLINE)
    assert exporter.state.unhealthy is None


PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)


@pytest.mark.parametrize(
    "accept",
    [pytest.param(None, id="published-format"), pytest.param(PROMETHEUS_3, id="new-format")],
)
def test_a_scrape_whose_render_fails_gets_500_and_one_line(
    make_looping, caplog, accept: str | None
) -> None:
    exporter, rounds, base = make_looping(process_metrics=True)
    assert rounds.ended("poll", 1)
    # What a scrape still renders itself: the per-process series, read at each scrape.
    broken = RaisingCollector()
    assert exporter.process_registry is not None
    exporter.process_registry.register(broken)
    broken.fault = OverflowError(f"int too large, says {API_KEY}")
    with caplog.at_level(logging.INFO):
        headers = {"accept": accept} if accept else {}
        response = httpx.get(f"{base}/metrics", headers=headers, timeout=DEADLINE)
    assert response.status_code == 500
    assert (
        response.text == f"cannot render /metrics: OverflowError: int too large, says {REDACTED}\n"
    )
    logged = [r for r in caplog.records if r.name.startswith("notte_exporter")]
    assert not [record for record in logged if record.levelno >= logging.INFO]
    assert httpx.get(f"{base}/metrics", timeout=DEADLINE).status_code == 200


def log_lines(err: str) -> list[str]:
    lines = err.splitlines()
    assert all(line.startswith("ts=") for line in lines), err  # nothing raw: log lines only
    return lines


def test_a_failed_publish_is_one_log_line_and_nothing_raw_on_stderr(
    make_looping, log_to_stderr, capfd
) -> None:
    log_to_stderr()
    exporter, rounds, _ = make_looping()
    broken = RaisingCollector()
    exporter.registry.register(broken)
    assert rounds.ended("poll", 1)
    capfd.readouterr()
    broken.fault = OverflowError(f"int too large, says {API_KEY}")
    rounds.run("poll")
    [line] = log_lines(capfd.readouterr().err)
    assert "level=error" in line
    assert f"cannot render /metrics: OverflowError: int too large, says {REDACTED}" in line
    assert "reason=other" in line


def test_a_stopped_loop_is_one_log_line_and_nothing_raw_on_stderr(
    make_looping, log_to_stderr, capfd
) -> None:
    log_to_stderr()
    exporter, rounds, _ = make_looping()
    broken = RaisingCollector()
    exporter.registry.register(broken)
    assert rounds.ended("poll", 1)
    capfd.readouterr()
    broken.fault = Fatal(f"gone, holding {API_KEY}")
    rounds.next("poll")
    assert until(lambda: exporter.state.unhealthy is not None)
    [line] = log_lines(capfd.readouterr().err)
    assert "level=error" in line
    assert f"the poll loop stopped: Fatal: gone, holding {REDACTED}" in line
    assert "/healthz fails from now on" in line
