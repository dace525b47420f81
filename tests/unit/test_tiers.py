"""The test tiers (tests/tiers.py) and the trust the tests run with (tests/conftest.py).

The tier rules are tried on small suites run in-process by pytester; the executable they
start is a stand-in named promtool, so that these tests need no Debian package themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

pytest_plugins = ["pytester"]

STARTS_PROMTOOL = """
import subprocess

import pytest

PROMTOOL = {promtool!r}


def test_unmarked():
    subprocess.run([PROMTOOL, "--version"], check=True)


@pytest.mark.prometheus
def test_marked():
    subprocess.run([PROMTOOL, "--version"], check=True)


def test_plain():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, tmp_path: Path) -> pytest.Pytester:
    promtool = tmp_path / "bin" / "promtool"
    promtool.parent.mkdir()
    promtool.write_text("#!/bin/sh\nexit 0\n")
    promtool.chmod(0o755)
    pytester.makeconftest('pytest_plugins = ["tiers"]')
    pytester.makepyfile(test_suite=STARTS_PROMTOOL.format(promtool=str(promtool)))
    return pytester


def test_a_test_that_starts_promtool_without_its_marker_fails_naming_the_marker(suite) -> None:
    result = suite.runpytest_inprocess("-k", "unmarked")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*test_unmarked starts promtool, which makes it a full-tier test: "
         "mark it @pytest.mark.prometheus*"]
    )  # fmt: skip


def test_a_test_with_the_marker_may_start_promtool(suite) -> None:
    suite.runpytest_inprocess("-k", "test_marked").assert_outcomes(passed=1)


def test_fast_leaves_out_the_tests_with_a_tier_marker(suite) -> None:
    result = suite.runpytest_inprocess("--fast", "-k", "not unmarked")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.no_fnmatch_line("*test_marked PASSED*")


def test_http_clients_in_tests_trust_only_the_throwaway_ca() -> None:
    # httpx builds each client's context this way, from SSL_CERT_FILE.
    assert len(httpx.create_ssl_context().get_ca_certs()) == 1
    assert Path(os.environ["SSL_CERT_FILE"]).read_text().count("BEGIN CERTIFICATE") == 1
