"""Fixtures for the simulator tests: a manual clock, a scripted account, a live server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from notte_exporter.simulator import ManualClock, SimulatedAccount, SimulatorServer

API_KEY = "test-key"
START = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def account(clock: ManualClock) -> SimulatedAccount:
    return SimulatedAccount(clock=clock, seed=1, profile=None)


@pytest.fixture
def server(account: SimulatedAccount) -> Iterator[SimulatorServer]:
    with SimulatorServer(account, api_key=API_KEY, stop_poll_interval=0.005) as running:
        yield running


@pytest.fixture
def client(server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10.0,
    ) as http:
        yield http
