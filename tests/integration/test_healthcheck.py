"""The container health check finds the exporter the way the exporter finds its settings."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from notte_exporter import healthcheck
from tls_support import bcrypt_hash, make_pki, tls_section, write_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serving(make_exporter):
    exporter = make_exporter(web_listen_address=f"127.0.0.1:{free_port()}")
    exporter.start()
    return exporter


def test_it_reads_the_flags_of_the_exporter_running_as_pid_1(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/opt/venv/bin/python\0/opt/venv/bin/notte-exporter\0"
                        b"--web.listen-address\0:9999\0--demo\0")  # fmt: skip
    assert healthcheck.exporter_arguments(cmdline) == ["--web.listen-address", ":9999", "--demo"]


def test_it_reads_nothing_when_pid_1_is_something_else(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/sbin/init\0splash\0")
    assert healthcheck.exporter_arguments(cmdline) == []


def test_the_port_comes_from_the_flag_over_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("NOTTE_EXPORTER_WEB_LISTEN_ADDRESS", ":1111")
    assert healthcheck.target(["--web.listen-address", ":2222"]) == ("http", "127.0.0.1", 2222)
    assert healthcheck.target([]) == ("http", "127.0.0.1", 1111)


def test_it_passes_against_a_running_exporter(serving) -> None:
    address = f"127.0.0.1:{serving.port}"
    assert healthcheck.main(["--web.listen-address", address]) == 0


def test_it_fails_when_nothing_answers(capsys) -> None:
    assert healthcheck.main(["--web.listen-address", f"127.0.0.1:{free_port()}"]) == 1
    assert "unhealthy: http://127.0.0.1:" in capsys.readouterr().err


def test_it_probes_over_https_when_the_web_config_turns_tls_on(tmp_path, make_exporter) -> None:
    pki = make_pki(tmp_path / "web")
    path = write_config(pki.folder / "web.yml", {
        "tls_server_config": tls_section(), "basic_auth_users": {"u": bcrypt_hash()},
    })  # fmt: skip
    exporter = make_exporter(web_listen_address=f"127.0.0.1:{free_port()}", web_config_file=path)
    exporter.start()
    args = ["--web.listen-address", f"127.0.0.1:{exporter.port}", "--web.config.file", str(path)]
    assert healthcheck.target(args)[0] == "https"
    assert healthcheck.main(args) == 0


@pytest.mark.timeout(10)  # the code before waited on the FIFO for ever
def test_a_web_config_that_is_a_fifo_is_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "web.yml"
    os.mkfifo(fifo)
    args = ["--web.listen-address", ":2222", "--web.config.file", str(fifo)]
    assert healthcheck.target(args) == ("http", "127.0.0.1", 2222)
