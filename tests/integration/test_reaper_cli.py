"""The reaper as an operator meets it: a broken policy file stops start-up, edits apply live."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_reload import lines_until

from support import API_KEY

# Each test starts the exporter as a process of its own (tests/tiers.py).
pytestmark = pytest.mark.slow


def test_a_malformed_policy_file_exits_2_listing_every_problem_and_no_key(
    api, tmp_path: Path
) -> None:
    path = tmp_path / "reaper.yaml"
    path.write_text(
        f"dry_run: nope\nmax_stops_per_hour: 0\npolicies:\n"
        f"  - name: Idle\n    idle_longer_than: {API_KEY}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTTE_")}
    result = subprocess.run(
        [sys.executable, "-m", "notte_exporter", "--notte.api-url", api.url,
         "--reaper.config.file", str(path), "--web.listen-address", "127.0.0.1:0"],
        env={**env, "NOTTE_API_KEY": API_KEY}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert API_KEY not in result.stderr
    assert [line for line in result.stderr.splitlines() if not line.startswith("ts=")] == [
        f"notte-exporter: invalid reaper config {str(path)!r}:",
        "  dry_run: must be true or false",
        "  max_stops_per_hour: must be at least 1, got 0",
        "  policies[0].name: 'Idle' is not a policy name: use lower-case letters, digits and "
        "dashes ([a-z0-9-]+), at most 63 of them",
        "  policies[0].idle_longer_than: invalid duration '<redacted>': use units like 30s, "
        "1m30s, 1.5s, 500ms, 2h, or a number of seconds",
    ]
    assert api.requests == []  # refused before the first poll


def test_an_edit_of_the_policy_file_applies_while_running(api, tmp_path: Path) -> None:
    path = tmp_path / "reaper.yaml"
    path.write_text("policies: [{name: idle-10m, idle_longer_than: 10m}]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTTE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "notte_exporter", "--notte.api-url", api.url,
         "--reaper.config.file", str(path), "--web.listen-address", "127.0.0.1:0"],
        env={**env, "NOTTE_API_KEY": API_KEY}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines_until(process, "serving metrics at")
        path.write_text("dry_run: false\npolicies: [{name: idle-10m, idle_longer_than: 10m}]\n")
        process.send_signal(signal.SIGHUP)
        lines_until(process, "reaper config reloaded: dry run is off")
        path.write_text("dry_run: false\npolicies: []\n")
        process.send_signal(signal.SIGHUP)
        lines = lines_until(process, "keeping the last good policies")
        assert "Traceback" not in "".join(lines)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()
