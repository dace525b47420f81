"""SIGHUP re-reads the files the exporter runs on and logs what changed, as Prometheus does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from support import API_KEY
from tls_support import bcrypt_hash, write_config

# Each test signals the exporter running as a process of its own: the full tier.
pytestmark = pytest.mark.slow


def lines_until(process: subprocess.Popen[str], words: str) -> list[str]:
    """The process's log lines up to the first that holds ``words`` (pytest's timeout bounds it)."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if words in line:
            return seen
    raise AssertionError(f"{words!r} never logged:\n{''.join(seen)}")


@pytest.fixture
def daemon(api, tmp_path) -> Iterator[tuple[subprocess.Popen[str], os.PathLike[str]]]:
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTTE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "notte_exporter", "--web.listen-address", "127.0.0.1:0",
         "--notte.api-url", api.url, "--notte.api-key-file", str(key_file)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines_until(process, "serving metrics at")
        yield process, key_file
    finally:
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_sighup_rereads_the_key_file_and_logs_the_change(daemon) -> None:
    process, key_file = daemon
    with open(key_file, "w") as file:
        file.write("sk-rotated-by-hand\n")
    process.send_signal(signal.SIGHUP)
    lines = lines_until(process, "read a new API key from --notte.api-key-file")
    assert "sk-rotated-by-hand" not in "".join(lines)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_sighup_with_nothing_changed_says_so_and_keeps_serving(daemon) -> None:
    process, _ = daemon
    process.send_signal(signal.SIGHUP)
    lines_until(process, "reload: nothing changed")
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_sighup_rereads_the_web_config_and_logs_what_changed(tmp_path) -> None:
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {"first": bcrypt_hash()}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTTE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "notte_exporter", "--demo", "--web.listen-address", "127.0.0.1:0",
         "--web.config.file", str(path)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines_until(process, "serving metrics at")
        write_config(path, {"basic_auth_users": {"first": bcrypt_hash(), "second": bcrypt_hash()}})
        process.send_signal(signal.SIGHUP)
        lines_until(process, "web config reloaded: basic auth users changed")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.timeout(30)  # the code before waited on the FIFO for ever, and said nothing
def test_sighup_with_the_key_file_replaced_by_a_fifo_keeps_the_key_and_says_why(daemon) -> None:
    process, key_file = daemon
    os.unlink(key_file)
    os.mkfifo(key_file)
    process.send_signal(signal.SIGHUP)
    [line] = [
        line
        for line in lines_until(process, "is a FIFO, not a regular file")
        if "is a FIFO" in line
    ]
    assert "level=error" in line
    assert "keeping the last key read until it is fixed" in line
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
