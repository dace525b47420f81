"""Settings and files an operator gets wrong, met by a real process: exit 2, at once.

Every case ends in one "invalid settings" message and exit code 2: never a traceback, never a
hang (each process has a deadline, which the code before overran on a FIFO), never a start
that then fails every poll, and never an echo of user info from the API URL.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from support import API_KEY

# Each test starts the exporter as a process of its own (tests/tiers.py).
pytestmark = pytest.mark.slow

COMMAND = [sys.executable, "-m", "notte_exporter"]
DEADLINE_SECONDS = 20
# Enough to start, far too little to read /dev/zero whole (as the code before did).
ADDRESS_SPACE_BYTES = 1 << 30


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOTTE_")}
    return subprocess.run(
        [*COMMAND, *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
        preexec_fn=lambda: resource.setrlimit(
            resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES)
        ),
    )


def refused(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The problems of an "invalid settings" exit; fails on anything else."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "notte-exporter: invalid settings:", result.stderr
    return [line.strip() for line in lines[1:]]


@pytest.mark.parametrize(
    ("where", "url", "secret"),
    [
        ("flag", "http://sk%2DQz7Wx9Kp2Vn4@127.0.0.1:1", "Qz7Wx9Kp2Vn4"),
        ("variable", "http://ops:Rt6Yb%21Lm3Jh8@127.0.0.1:1/", "Rt6Yb"),
    ],
)
def test_user_info_in_the_api_url_exits_2_and_shows_nowhere(
    where: str, url: str, secret: str
) -> None:
    flags = ["--notte.api-url", url] if where == "flag" else []
    env = {"NOTTE_API_KEY": API_KEY} | ({"NOTTE_API_URL": url} if where == "variable" else {})
    result = run("--once", *flags, env=env)
    assert refused(result) == [
        "--notte.api-url (NOTTE_API_URL): must not hold a user name or password (before @): "
        "the key goes in NOTTE_API_KEY or --notte.api-key-file"
    ]
    for shown in (secret, secret.replace("!", "%21"), "%2D", "ops"):
        assert shown not in result.stdout + result.stderr


def test_a_query_string_in_the_api_url_exits_2_unquoted() -> None:
    url = "http://127.0.0.1:1/?token=sk-Hd72Lw9Xq"
    result = run("--once", "--notte.api-url", url, env={"NOTTE_API_KEY": API_KEY})
    [problem] = refused(result)
    assert "must not have a query string or fragment" in problem
    assert "Hd72Lw9Xq" not in result.stdout + result.stderr


def test_a_malformed_api_url_exits_2_without_a_traceback() -> None:
    result = run("--once", "--notte.api-url", "http://[::1", env={"NOTTE_API_KEY": API_KEY})
    assert refused(result) == [
        "--notte.api-url (NOTTE_API_URL): 'http://[::1' is not a valid URL (Invalid IPv6 URL); "
        "give the base URL, e.g. https://api.notte.cc"
    ]


def test_ports_out_of_range_and_durations_past_a_year_are_listed_in_one_message() -> None:
    result = run(
        "--once", "--notte.api-url", "http://127.0.0.1:99999", "--web.listen-address", ":99999",
        "--sessions.idle-threshold", "3000y", "--poll.interval", "400d",
        env={"NOTTE_API_KEY": API_KEY},
    )  # fmt: skip
    problems = refused(result)
    assert len(problems) == 4
    for words in (
        "--notte.api-url (NOTTE_API_URL): 'http://127.0.0.1:99999': port 99999 is out of range",
        "--web.listen-address (NOTTE_EXPORTER_WEB_LISTEN_ADDRESS): ':99999' is not host:port",
        "--sessions.idle-threshold (NOTTE_EXPORTER_SESSIONS_IDLE_THRESHOLD): must be at most "
        "1y, got 3000y",
        "--poll.interval (NOTTE_EXPORTER_POLL_INTERVAL): must be at most 1y, got 400d",
    ):
        assert any(problem.startswith(words) for problem in problems), words


@pytest.mark.parametrize(
    ("target", "problem"),
    [("fifo", "is a FIFO, not a regular file"), ("/dev/zero", "is a character device")],
)
def test_a_key_file_that_waits_or_never_ends_exits_2_at_once(
    tmp_path: Path, target: str, problem: str
) -> None:
    path = tmp_path / "api-key"
    if target == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(target)
    result = run("--once", "--notte.api-key-file", str(path))
    [line] = refused(result)
    assert line.startswith(
        f"--notte.api-key-file (NOTTE_EXPORTER_NOTTE_API_KEY_FILE): {str(path)!r}: {problem}"
    )


def test_a_web_config_file_that_is_a_fifo_exits_2_at_once(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    os.mkfifo(path)
    result = run("--demo", "--once", "--web.config.file", str(path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"invalid web config {str(path)!r}:\n  is a FIFO, not a regular file" in result.stderr
