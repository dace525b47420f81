"""The command line's arguments and settings, read by ``cli.main`` in this process.

Each of these ends before the exporter is built (help, version, a setting refused with exit
code 2), so they need no process of their own: what a process adds, exit codes on signals,
logs and the exporter running, is tests/integration/test_cli.py's.
"""

import os
import re
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest

from notte_exporter import __version__
from notte_exporter.cli import main


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """``notte-exporter ARGS`` with only ``env`` of the NOTTE_ variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOTTE_")}
    out, err = StringIO(), StringIO()
    with (
        mock.patch.dict(os.environ, {**clean, **(env or {})}, clear=True),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's --help and --version
            code = exc.code if isinstance(exc.code, int) else 0
    return Result(code, out.getvalue(), err.getvalue())


def test_version_names_the_exporter_and_python() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"notte-exporter {__version__} (python ")


def test_help_lists_every_flag_with_its_environment_variable() -> None:
    out = run("--help").stdout
    for flag, env in [
        ("--web.listen-address", "NOTTE_EXPORTER_WEB_LISTEN_ADDRESS"),
        ("--notte.api-url", "NOTTE_API_URL"),
        ("--notte.api-key-file", "NOTTE_EXPORTER_NOTTE_API_KEY_FILE"),
        ("--poll.interval", "NOTTE_EXPORTER_POLL_INTERVAL"),
        ("--sessions.detail-limit", "NOTTE_EXPORTER_SESSIONS_DETAIL_LIMIT"),
        ("--log.format", "NOTTE_EXPORTER_LOG_FORMAT"),
        ("--once", None),
        ("--demo", "NOTTE_EXPORTER_DEMO"),
        ("--no-collector.usage", "NOTTE_EXPORTER_COLLECTOR_USAGE"),
        ("--usage.interval", "NOTTE_EXPORTER_USAGE_INTERVAL"),
        ("--sessions.pending-timeout", "NOTTE_EXPORTER_SESSIONS_PENDING_TIMEOUT"),
    ]:
        assert flag in out
        if env:
            assert env in re.sub(r"\s+", "", out)


def test_a_missing_key_says_how_to_provide_one_and_exits_2() -> None:
    result = run("--once")
    assert result.returncode == 2
    assert "NOTTE_API_KEY: no API key; set this variable, or --notte.api-key-file" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_invalid_setting_is_listed_in_one_message() -> None:
    result = run(
        "--poll.interval", "soon", "--notte.page-size", "500", "--log.level", "loud",
        env={"NOTTE_EXPORTER_WEB_LISTEN_ADDRESS": "nowhere", "NOTTE_API_KEY": "k"},
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "notte-exporter: invalid settings:"
    assert len(lines) == 5
    for words in ("--poll.interval", "--notte.page-size", "--log.level", "nowhere"):
        assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_a_poll_timeout_not_shorter_than_the_interval_is_refused() -> None:
    result = run("--demo", "--poll.interval", "10s", "--poll.timeout", "10s")
    assert result.returncode == 2
    assert (
        "--poll.timeout (NOTTE_EXPORTER_POLL_TIMEOUT): 10s must be shorter than "
        "--poll.interval (10s)" in result.stderr
    )


def test_an_unreadable_key_file_is_refused(tmp_path: Path) -> None:
    result = run("--notte.api-key-file", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert (
        "--notte.api-key-file (NOTTE_EXPORTER_NOTTE_API_KEY_FILE): "
        f"{str(tmp_path / 'missing')!r}: cannot read it"
    ) in result.stderr


def test_help_fits_100_columns_even_on_a_wide_terminal() -> None:
    out = run("--help", env={"COLUMNS": "250"}).stdout
    assert max(len(line) for line in out.splitlines()) <= 100


def test_help_shows_placeholders_choices_groups_and_defaults() -> None:
    out = run("--help").stdout
    for words in (
        "--poll.interval DURATION",
        "--web.listen-address ADDRESS",
        "--notte.api-key-file PATH",
        "--notte.page-size N",
        "--log.level {debug,info,warn,warning,error}",
        "--log.format {logfmt,json}",
        "--demo.profile {steady,leak}",
        "default 30s",
        "DURATION: 30s, 1m30s, 1.5s, 500ms",
    ):
        assert words in out, words
    headings = [line for line in out.splitlines() if line and not line.startswith(" ")]
    for group in ("web:", "Notte API:", "polling:", "sessions:", "logging:", "demo:"):
        assert group in headings


@pytest.mark.parametrize("words", [["--poll.interval", "-5s"], ["--poll.interval=-5s"]])
def test_a_negative_duration_gets_the_limit_not_an_argparse_error(words: list[str]) -> None:
    result = run("--demo", "--once", *words)
    assert result.returncode == 2
    assert "--poll.interval (NOTTE_EXPORTER_POLL_INTERVAL): must be at least 1s, got -5s" in (
        result.stderr
    )
    assert "expected one argument" not in result.stderr


def test_a_bad_api_url_variable_is_reported_under_its_documented_name() -> None:
    result = run("--once", env={"NOTTE_API_URL": "api.notte.cc", "NOTTE_API_KEY": "k"})
    assert result.returncode == 2
    assert "--notte.api-url (NOTTE_API_URL): 'api.notte.cc' is not an http(s) URL" in (
        result.stderr
    )
    assert "NOTTE_EXPORTER_NOTTE_API_URL" not in result.stderr
