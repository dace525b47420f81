"""Shared fixtures: a simulated Notte API on loopback, and exporters wired to it.

Time is a ManualClock shared by the simulator and the exporter, and backoff sleeps are
recorded instead of slept, so every test is exact and fast. Every HTTP client of a test run
trusts one throwaway CA and nothing else: tests talk to loopback only. The test tiers are
tiers.py's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme
from pydantic import SecretStr

from notte_exporter.daemon import Exporter
from notte_exporter.keys import ApiKey
from notte_exporter.settings import Settings
from notte_exporter.simulator import ManualClock, SimulatedAccount, SimulatorServer
from notte_exporter.web.server import IDLE_TIMEOUT
from support import API_KEY

pytest_plugins = ["tiers"]


@pytest.fixture(scope="session", autouse=True)
def _trust_only_a_throwaway_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """httpx (and OpenSSL in the processes tests start) read SSL_CERT_FILE: with it, no test
    can depend on the public CAs, and no HTTP client parses their bundle, which every client
    of a run (hundreds) did before and which made that the largest cost of the fast tier.
    TLS tests hand their clients their own CA, as before."""
    ca_file = tmp_path_factory.mktemp("trust") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(ca_file))
        patch.delenv("SSL_CERT_DIR", raising=False)
        yield


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment; a developer's real key must never leak into tests.
    COLUMNS and LINES go too (pytest-xdist's workers set them): the processes tests start
    must lay out their help as they would without a terminal."""
    for name in list(os.environ):
        if name.startswith(("NOTTE_", "PROMETHEUS_DISABLE")) or name in ("COLUMNS", "LINES"):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def account(clock: ManualClock) -> SimulatedAccount:
    return SimulatedAccount(clock=clock, profile=None)


@pytest.fixture
def api(account: SimulatedAccount) -> Iterator[SimulatorServer]:
    # A 1 s rate-limit window on the manual clock: a 429's X-RateLimit-Reset asks for a wait
    # that fits in any poll's budget, as the exporter reads it on the same clock. Stopping
    # waits for the serving thread to look up, which every exporter test does once.
    with SimulatorServer(
        account, api_key=API_KEY, rate_limit=10_000, rate_window=1.0, stop_poll_interval=0.005
    ) as server:
        yield server


class Sleeps(list[float]):
    """Records backoff waits instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


MakeExporter = Callable[..., Exporter]


@pytest.fixture
def make_exporter(
    api: SimulatorServer, clock: ManualClock, sleeps: Sleeps
) -> Iterator[MakeExporter]:
    made: list[Exporter] = []

    def make(
        *,
        thread_cpu: Callable[[], float] = time.thread_time,
        idle_timeout: float = IDLE_TIMEOUT,
        **overrides: Any,
    ) -> Exporter:
        values: dict[str, Any] = {
            "notte_api_url": api.url,
            "notte_api_key": SecretStr(API_KEY),
            "poll_interval": 30.0,
            "notte_retries": 2,
            "notte_timeout": 5.0,
            # Off unless a test is about usage: session tests count their requests exactly.
            "collector_usage": False,
        }
        values.update(overrides)
        settings = Settings(**values)
        key = settings.notte_api_key
        exporter = Exporter(
            settings,
            ApiKey(key),
            clock=clock.now,
            sleep=sleeps,
            process_metrics=False,
            usage_clock=lambda: clock.now().timestamp(),
            thread_cpu=thread_cpu,
            idle_timeout=idle_timeout,
        )
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.stop(grace=1.0)


@pytest.fixture
def served(make_exporter: MakeExporter) -> Exporter:
    """An exporter serving on a free loopback port, after one successful poll."""
    exporter = make_exporter(web_listen_address="127.0.0.1:0")
    exporter.start()
    assert exporter.poll_once().ok
    return exporter
