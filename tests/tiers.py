"""The test tiers: which tests ``make test-fast`` runs, and the rule that keeps it honest.

A test carrying one of ``TIER_MARKERS`` belongs to the full tier only (``make test``); every
other test is in the fast tier too (``pytest --fast``, which ``make test-fast`` runs), which
therefore needs no Debian package, no Helm engine and no image build.

A test that starts one of ``REAL_EXECUTABLES`` without the marker named there fails, with an
error that names the marker, in every run: a test cannot land in the fast tier by mistake
and pass only on machines where the package happens to be installed. (Fixtures can give
markers too: tests/packaging/conftest.py marks the users of the Helm engine and the image.)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TIER_MARKERS = {
    "prometheus": "needs the real prometheus server or promtool (Debian package prometheus)",
    "chromium": "needs headless Chromium (Debian package chromium)",
    "curl": "needs curl (Debian package curl)",
    "openssl": "needs the openssl command (Debian package openssl)",
    "helm": "renders the chart with the real Helm engine",
    "image": "rebuilds the container image's virtual environment as its Dockerfile does",
    "slow": "starts the exporter or its simulator as a process of its own, or costs a second "
    "of CPU or more (benchmarks, long simulations)",
}
# The executables of the Debian packages scripts/install-system-deps.sh installs for
# `make test`, and the marker a test needs to start each one.
REAL_EXECUTABLES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "chromium": "chromium",
    "curl": "curl",
    "openssl": "openssl",
}
# The test this process is running (setup, call and teardown), if any.
_running: list[pytest.Item] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="run the fast tier only: the tests without a tier marker (make test-fast)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, description in TIER_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    # An audit hook cannot be removed; it checks only while a test runs (see _running).
    sys.addaudithook(_refuse_unmarked_real_executables)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Last, so that the markers fixtures give (tests/packaging/conftest.py) count."""
    if not config.getoption("fast"):
        return
    full_only = [item for item in items if in_full_tier_only(item)]
    if full_only:
        config.hook.pytest_deselected(items=full_only)
        items[:] = [item for item in items if not in_full_tier_only(item)]


def in_full_tier_only(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) is not None for name in TIER_MARKERS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


def _refuse_unmarked_real_executables(event: str, args: tuple[Any, ...]) -> None:
    """An audit hook: raising aborts the ``subprocess.Popen`` it was called for, whose first
    argument is the executable about to run."""
    if event != "subprocess.Popen" or not _running:
        return
    name = Path(os.fsdecode(args[0])).name
    marker = REAL_EXECUTABLES.get(name)
    if marker is not None and _running[-1].get_closest_marker(marker) is None:
        raise RuntimeError(
            f"{_running[-1].nodeid} starts {name}, which makes it a full-tier test: "
            f"mark it @pytest.mark.{marker} (tests/tiers.py)"
        )
