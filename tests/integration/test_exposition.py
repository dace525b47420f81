"""The exposition itself: golden text for a fixed account, and promtool's verdict."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from notte_exporter.simulator import Fault

GOLDEN = Path(__file__).parents[1] / "golden" / "sessions.prom"
# Families whose values depend on wall-clock timing rather than on the account.
TIMING = re.compile(r"^(# (HELP|TYPE) )?notte_(api_request_duration|exporter_poll_duration|"
                    r"exporter_build_info)")  # fmt: skip


@pytest.fixture
def fixed_account(account, clock):
    """A small account with one of everything, at fixed times and ids."""
    account.start_session(session_id="old-chromium", network_request_bytes=100,
                          enforce_timeouts=False)  # fmt: skip
    clock.advance(60)
    account.start_session(session_id="chrome-proxied", browser_type="chrome", proxies=True,
                          solve_captchas=True, network_response_bytes=2048)  # fmt: skip
    account.start_session(session_id="ff-headful", browser_type="firefox", headless=False,
                          error="navigation timeout")  # fmt: skip
    return account


def test_exposition_matches_the_golden_file(fixed_account, clock, make_exporter) -> None:
    exporter = make_exporter(sessions_limit=25, collector_usage=True)
    exporter.poll_once()
    brief = fixed_account.start_session(session_id="brief", browser_type="firefox")
    fixed_account.access("old-chromium", request_bytes=50)
    clock.advance(10)
    fixed_account.stop(brief)
    # Five minutes on: the two newer sessions idled out; the old one, which the platform
    # fails to close, is idle and overdue.
    clock.advance(5 * 60)
    exporter.poll_once()
    text = "\n".join(
        line for line in exporter.exposition().decode().splitlines() if not TIMING.match(line)
    )
    text = re.sub(r"(notte_api_rate_limit_\w+) \S+", r"\1 <value>", text)
    text = re.sub(r"(notte_api_requests_total\{[^}]*\}) \S+", r"\1 <count>", text)
    # How far polls read ahead follows the simulator's measured latency.
    text = re.sub(r"^(notte_exporter_poll_read_ahead) \S+", r"\1 <pages>", text, flags=re.M)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text + "\n")
    assert text + "\n" == GOLDEN.read_text()


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: make test installs it (scripts/install-system-deps.sh)")
    return path


def check_metrics(promtool: str, exposition: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition.decode(),
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.prometheus
def test_promtool_finds_nothing_to_criticise(fixed_account, make_exporter, promtool) -> None:
    exporter = make_exporter(sessions_limit=25, collector_usage=True)
    exporter.poll_once()
    result = check_metrics(promtool, exporter.exposition())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


@pytest.mark.prometheus
def test_promtool_is_happy_after_failures_too(api, make_exporter, promtool) -> None:
    api.faults.push(Fault.status(401))
    exporter = make_exporter()
    exporter.poll_once()
    result = check_metrics(promtool, exporter.exposition())
    assert result.returncode == 0, result.stdout + result.stderr
