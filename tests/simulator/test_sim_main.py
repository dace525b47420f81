"""`python -m notte_exporter.simulator` serves until SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest

pytestmark = pytest.mark.slow


def test_module_prints_its_url_serves_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "notte_exporter.simulator",
            "--listen",
            "127.0.0.1:0",
            "--profile",
            "leak",
            "--seed",
            "1",
            "--speed",
            "10",
            "--api-key",
            "K",
            "--browser-rate",
            "3.6",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/sessions", headers={"Authorization": "Bearer K"})
        assert response.status_code == 200
        assert response.json()["items"]
        assert httpx.get(f"{url}/sessions").status_code == 401
        usage = httpx.get(f"{url}/usage", headers={"Authorization": "Bearer K"}).json()
        assert usage["plan_type"] == "pro"
        assert usage["total_cost"] > 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_module_rejects_a_bad_listen_address() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "notte_exporter.simulator", "--listen", "nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "host:port" in result.stderr
