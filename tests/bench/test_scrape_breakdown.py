"""Smoke test of ``python -m bench.scrape_breakdown``: every layer scraped, no timing asserted."""

from __future__ import annotations

import pytest

from bench import scrape_breakdown

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_every_layer_is_scraped_next_to_the_floor(encoding: str) -> None:
    medians = scrape_breakdown.run(sessions=50, repeats=1, encoding=encoding)
    assert list(medians) == [
        "floor",
        "server, constant bytes",
        "routes, no per-process series",
        "/metrics",
        "/healthz",
    ]
    assert all(seconds > 0 for seconds in medians.values())
