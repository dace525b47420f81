"""Real processes for the end-to-end tests: demo exporters and a Prometheus scraping them.

Each fixture that starts processes owns one ``Processes``: it starts them on free loopback ports,
waits until each is ready (Prometheus answers queries with a plain-text 503 until its TSDB
is open), and on ``close`` stops them in reverse order. A wait that times out fails with the
tail of every process' log, which is what one needs to read after a CI failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from monitoring_helpers import PROMETHEUS, free_port

STARTUP_TIMEOUT = 20.0
EXPORTER = Path(sys.executable).with_name("notte-exporter")

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, logs: list[Path]) -> T:
    """Poll `probe` until it returns something, or fail with the processes' log tails."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except httpx.HTTPError:
            value = None
        if value is not None:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tails}")
        time.sleep(0.25)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Processes:
    """The processes and HTTP clients of one fixture, torn down together."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.logs: list[Path] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._clients: list[httpx.Client] = []

    def exporter(self, name: str, args: Sequence[str]) -> tuple[subprocess.Popen[bytes], str]:
        """A ready exporter on a free port, with the environment's NOTTE_* variables left out."""
        instance = f"127.0.0.1:{free_port()}"
        env = {key: value for key, value in os.environ.items() if not key.startswith("NOTTE_")}
        process = self._start(name, [str(EXPORTER), *args, f"--web.listen-address={instance}"], env)
        client = self._client(f"http://{instance}", timeout=2)
        wait_for(
            f"the {name} to be ready",
            lambda: True if client.get("/readyz").status_code == 200 else None,
            STARTUP_TIMEOUT,
            self.logs,
        )
        return process, instance

    def prometheus(self, config: dict[str, Any]) -> httpx.Client:
        """A ready Prometheus with ``config``, and a client of its HTTP API."""
        config_path = self.tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        port = free_port()
        self._start(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
        )
        api = self._client(f"http://127.0.0.1:{port}", timeout=5)
        wait_for(
            "Prometheus to be ready",
            lambda: True if api.get("/-/ready").status_code == 200 else None,
            STARTUP_TIMEOUT,
            self.logs,
        )
        return api

    def close(self) -> None:
        for client in self._clients:
            client.close()
        for process in reversed(self._processes):
            stop(process)

    def _start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{name}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        self._processes.append(process)
        return process

    def _client(self, base_url: str, timeout: float) -> httpx.Client:
        client = httpx.Client(base_url=base_url, timeout=timeout)
        self._clients.append(client)
        return client
