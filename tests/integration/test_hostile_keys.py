"""Malformed keys, through every door: refused or failed with a reason, never echoed.

Each key is fed through ``NOTTE_API_KEY``, through ``--notte.api-key-file`` at start-up and
through a key file rotated under a running exporter; then every output (stderr, log lines in
both formats, the landing page, /metrics, the poll status) is searched for every fragment of
6 or more characters of the key. Fragments with no letter or digit (runs of spaces, say)
identify nothing and are skipped.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from notte_exporter import cli
from notte_exporter.daemon import Exporter
from notte_exporter.errors import FailureReason
from notte_exporter.keys import ApiKey
from notte_exporter.logs import JsonFormatter, LogfmtFormatter, SecretFilter
from notte_exporter.settings import Settings
from support import API_KEY

# Distinctive material, so that no fragment of it can appear in an output by chance.
A = "sk-Qz7Wx9Kp2Vn4Rt6Yb"
B = "Lm3Jh8Fd5Gs1Pc0Xe"

# (key, problem): bytes only where the environment cannot carry the value.
MALFORMED: list[tuple[str | bytes, str]] = [
    (f"{A}\n{B}", "contains a line break"),
    (f"s\n{A}{B}", "contains a line break"),
    (f"{A}{B}\nx", "contains a line break"),
    (f"{A}\r\n{B}", "contains a line break"),
    (f"{A}\r{B}", "contains a line break"),
    (f"{A}\n\n{B}\n", "contains a line break"),
    (f"{A}\n{B}\n{A[::-1]}", "contains a line break"),
    (f"{A}\t{B}", "contains a space or a tab"),
    (f"{A}\t\t{B}", "contains a space or a tab"),
    (f"{A} {B}", "contains a space or a tab"),
    (f"Bearer {A}{B}", "contains a space or a tab"),
    (f"{A}\x0b{B}", "contains a space or a tab"),
    (f"{A}\x0c{B}", "contains a space or a tab"),
    (f"{A}\x01{B}", "contains a control character"),
    (f"{A}\x1b[31m{B}", "contains a control character"),
    (f"{A}\x7f{B}", "contains a control character"),
    (f"{A}\x00{B}".encode(), "contains a control character"),
    (f"{A}{B}\x00".encode(), "contains a control character"),
    (f"{A}\u00e9{B}", "contains a non-ASCII character"),
    (f"{A}\u00fc{B}", "contains a non-ASCII character"),
    (f"{A}\u00a0{B}", "contains a non-ASCII character"),
    (f"{A}\u200b{B}", "contains a non-ASCII character"),
    (f"{A}\u2028{B}", "contains a non-ASCII character"),
    (f"{A}\u0430{B}", "contains a non-ASCII character"),
    (f"{A}\U0001f511{B}", "contains a non-ASCII character"),
    (f"\uff53\uff4b-{A}{B}", "contains a non-ASCII character"),
    (f"{A}".encode() + b"\xff\xfe" + B.encode(), "contains a non-ASCII character"),
    ((A + B) * 300, "is longer than 1024 characters"),
    ((A + B) * 30, "is longer than 1024 characters"),
    ("", "is blank"),
    ("   ", "is blank"),
    ("\n", "is blank"),
    ("\t \t", "is blank"),
]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """cli.main configures the root logger; later tests must not write to its stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def fragments(key: str | bytes) -> Iterator[str]:
    text = key.decode("utf-8", errors="replace") if isinstance(key, bytes) else key
    text = text.strip()
    seen: set[str] = set()
    for start in range(len(text) - 5):
        fragment = text[start : start + 6]
        if fragment not in seen and any(char.isalnum() for char in fragment):
            seen.add(fragment)
            yield fragment


def leaked(key: str | bytes, *outputs: str) -> list[str]:
    everything = "\n".join(outputs)
    return [fragment for fragment in fragments(key) if fragment in everything]


def ids(case: tuple[str | bytes, str]) -> str:
    return case[1].replace(" ", "-")


def test_there_are_at_least_30_malformed_keys() -> None:
    assert len(MALFORMED) >= 30


@pytest.mark.parametrize(("key", "problem"), [c for c in MALFORMED if isinstance(c[0], str)])
def test_a_malformed_key_in_the_variable_is_refused_without_echo(
    key, problem, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("NOTTE_API_KEY", key)
    assert cli.main(["--once"]) == cli.EXIT_USAGE
    out, err = capsys.readouterr()
    assert f"NOTTE_API_KEY: the key {problem}" in err
    assert leaked(key, out, err) == []


@pytest.mark.parametrize(("key", "problem"), MALFORMED)
def test_a_malformed_key_file_is_refused_at_start_up_without_echo(
    key, problem, tmp_path, monkeypatch, capsys
) -> None:
    path = tmp_path / "api-key"
    path.write_bytes(key if isinstance(key, bytes) else key.encode())
    # The variable is set too: the file named on the command line wins, and is checked.
    monkeypatch.setenv("NOTTE_API_KEY", API_KEY)
    assert cli.main(["--once", "--notte.api-key-file", str(path)]) == cli.EXIT_USAGE
    out, err = capsys.readouterr()
    assert (
        "--notte.api-key-file (NOTTE_EXPORTER_NOTTE_API_KEY_FILE): "
        f"{str(path)!r}: the key {problem}" in err
    )
    assert leaked(key, out, err) == []


@pytest.fixture
def rotating(api, clock, sleeps, tmp_path) -> Iterator[tuple[Exporter, Path, list[io.StringIO]]]:
    path = tmp_path / "api-key"
    path.write_text(API_KEY + "\n")
    settings = Settings(
        notte_api_url=api.url,
        notte_api_key_file=path,
        web_listen_address="127.0.0.1:0",
        notte_retries=0,
    )
    key = ApiKey(path=path)
    exporter = Exporter(settings, key, clock=clock.now, sleep=sleeps, process_metrics=False)
    streams = [io.StringIO(), io.StringIO()]
    handlers = []
    for stream, formatter in zip(streams, (LogfmtFormatter(), JsonFormatter()), strict=True):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.addFilter(SecretFilter(key.redact))
        handlers.append(handler)
    package = logging.getLogger("notte_exporter")
    for handler in handlers:
        package.addHandler(handler)
    previous = package.level
    package.setLevel(logging.DEBUG)
    exporter.start()
    yield exporter, path, streams
    exporter.stop(grace=1.0)
    package.setLevel(previous)
    for handler in handlers:
        package.removeHandler(handler)


def test_rotating_to_malformed_keys_fails_polls_and_echoes_nothing(rotating) -> None:
    exporter, path, streams = rotating
    base = f"http://127.0.0.1:{exporter.port}"
    assert exporter.poll_once().ok
    for key, problem in MALFORMED:
        if problem == "is blank":
            path.write_text(API_KEY)
            assert exporter.poll_once().ok
        path.write_bytes(key if isinstance(key, bytes) else key.encode())
        status = exporter.poll_once()
        if problem == "is blank":
            # Being rewritten: the last good key stays in use.
            assert status.ok
        else:
            assert status.reason == FailureReason.INVALID_KEY
            assert str(path) in status.message
            assert problem in status.message
        pages = [httpx.get(base + page, timeout=10).text for page in ("/", "/metrics")]
        outputs = [*pages, status.message, *(stream.getvalue() for stream in streams)]
        assert leaked(key, *outputs) == [], problem
    path.write_text(API_KEY)
    assert exporter.poll_once().ok


def test_the_redaction_step_covers_session_ids_in_labels(api, account, make_exporter) -> None:
    account.start_session(session_id=f"echo-{API_KEY}")
    exporter = make_exporter()
    assert exporter.poll_once().ok
    exposition = exporter.exposition().decode()
    assert "notte_session_info" in exposition
    assert API_KEY not in exposition


def test_flags_win_the_key_file_on_the_command_line_beats_the_variable(
    api, tmp_path, monkeypatch, capsys
) -> None:
    path = tmp_path / "api-key"
    path.write_text(API_KEY + "\n")
    monkeypatch.setenv("NOTTE_API_KEY", "sk-wrong-key-from-env")
    monkeypatch.setenv("NOTTE_API_URL", api.url)
    assert cli.main(["--once", "--notte.api-key-file", str(path)]) == cli.EXIT_OK
    assert "notte_up 1.0" in capsys.readouterr().out


def test_the_key_source_is_logged_at_info(api, tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "api-key"
    path.write_text(API_KEY + "\n")
    monkeypatch.setenv("NOTTE_API_URL", api.url)
    cli.main(["--once", "--notte.api-key-file", str(path)])
    err = capsys.readouterr().err
    assert f"using the API key from --notte.api-key-file {str(path)!r}" in err
    assert API_KEY not in err
