"""TLS, client certificates and basic auth as real clients meet them: curl, openssl s_client
and a Prometheus server scraping with scheme https, tls_config and basic_auth."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tls_support import PASSWORD, USER, bcrypt_hash, make_pki, tls_section, write_config

PROMETHEUS = "/usr/bin/prometheus"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: make test installs it (scripts/install-system-deps.sh)")
    return path


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("curl"), "--silent", "--show-error", "--max-time", "30", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def status_of(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "web")


@pytest.fixture
def tls_auth(pki, make_exporter):
    """An exporter serving HTTPS with basic auth and an HSTS header."""
    path = write_config(pki.folder / "web.yml", {
        "tls_server_config": tls_section(),
        "basic_auth_users": {USER: bcrypt_hash()},
        "http_server_config": {"headers": {"Strict-Transport-Security": "max-age=31536000"}},
    })  # fmt: skip
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    exporter.start()
    assert exporter.poll_once().ok
    return exporter


@pytest.fixture
def mutual_tls(pki, make_exporter):
    """An exporter that requires a client certificate signed by the clients' CA."""
    path = write_config(pki.folder / "web.yml", {
        "tls_server_config": tls_section(
            client_auth_type="RequireAndVerifyClientCert", client_ca_file="clients-ca.crt"),
        "basic_auth_users": {USER: bcrypt_hash()},
    })  # fmt: skip
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    exporter.start()
    assert exporter.poll_once().ok
    return exporter


@pytest.mark.curl
def test_curl_scrapes_over_https_with_basic_auth(pki, tls_auth) -> None:
    url = f"https://127.0.0.1:{tls_auth.port}/metrics"
    result = curl("--cacert", str(pki.ca_file), "--user", f"{USER}:{PASSWORD}", url)
    assert result.returncode == 0, result.stderr
    assert "notte_up 1.0" in result.stdout


@pytest.mark.curl
def test_curl_without_credentials_gets_401_with_www_authenticate(pki, tls_auth) -> None:
    result = curl(
        "--cacert", str(pki.ca_file), "--include", f"https://127.0.0.1:{tls_auth.port}/metrics"
    )
    assert result.stdout.startswith("HTTP/")
    assert " 401" in result.stdout.splitlines()[0]
    assert 'www-authenticate: basic realm="notte-exporter"' in result.stdout.lower()
    assert "notte_up" not in result.stdout


@pytest.mark.curl
def test_curl_with_a_wrong_password_gets_401(pki, tls_auth) -> None:
    result = curl("--cacert", str(pki.ca_file), "--user", f"{USER}:wrong", "--write-out",
                  "\n%{http_code}", f"https://127.0.0.1:{tls_auth.port}/metrics")  # fmt: skip
    assert status_of(result) == "401"


@pytest.mark.curl
def test_the_probes_need_no_credentials_but_still_speak_tls(pki, tls_auth) -> None:
    result = curl(
        "--cacert", str(pki.ca_file), "--include", f"https://127.0.0.1:{tls_auth.port}/healthz"
    )
    assert result.returncode == 0, result.stderr
    assert " 200" in result.stdout.splitlines()[0]
    assert "strict-transport-security: max-age=31536000" in result.stdout.lower()


@pytest.mark.curl
def test_curl_scrapes_over_http2_with_basic_auth(pki, tls_auth) -> None:
    result = curl("--http2", "--cacert", str(pki.ca_file), "--user", f"{USER}:{PASSWORD}",
                  "--write-out", "\n%{http_version} %{http_code}",
                  f"https://127.0.0.1:{tls_auth.port}/metrics")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert status_of(result) == "2 200"
    assert "notte_up 1.0" in result.stdout


@pytest.mark.curl
def test_http2_off_in_the_web_config_serves_http_1_1(pki, make_exporter) -> None:
    path = write_config(pki.folder / "web.yml", {
        "tls_server_config": tls_section(), "http_server_config": {"http2": False},
    })  # fmt: skip
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    exporter.start()
    result = curl("--http2", "--cacert", str(pki.ca_file), "--write-out",
                  "\n%{http_version} %{http_code}",
                  f"https://127.0.0.1:{exporter.port}/healthz")  # fmt: skip
    assert status_of(result) == "1.1 200"


@pytest.mark.curl
@pytest.mark.parametrize(("before", "after"), [(False, True), (True, False)])
def test_a_reloaded_http2_setting_applies_to_the_next_handshake(
    pki, make_exporter, before: bool, after: bool
) -> None:
    def write(http2: bool) -> Path:
        return write_config(pki.folder / "web.yml", {
            "tls_server_config": tls_section(), "http_server_config": {"http2": http2},
        })  # fmt: skip

    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=write(before))
    exporter.start()
    write(after)
    assert exporter.reload()  # what SIGHUP does
    result = curl("--http2", "--cacert", str(pki.ca_file), "--write-out",
                  "\n%{http_version} %{http_code}",
                  f"https://127.0.0.1:{exporter.port}/healthz")  # fmt: skip
    assert status_of(result) == ("2 200" if after else "1.1 200")


@pytest.mark.curl
def test_plain_http_to_the_tls_port_gets_no_metrics(tls_auth) -> None:
    result = curl("--write-out", "\n%{http_code}", f"http://127.0.0.1:{tls_auth.port}/metrics")
    assert "notte_up" not in result.stdout
    assert status_of(result) in ("", "000", "400")


@pytest.mark.openssl
def test_openssl_s_client_verifies_the_chain(pki, tls_auth) -> None:
    result = subprocess.run(
        [tool("openssl"), "s_client", "-connect", f"127.0.0.1:{tls_auth.port}",
         "-CAfile", str(pki.ca_file), "-brief"],
        input="", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Verification: OK" in output, output
    assert "Protocol version: TLSv1.3" in output


@pytest.mark.openssl
def test_max_version_limits_the_protocol(pki, make_exporter) -> None:
    path = write_config(
        pki.folder / "web.yml", {"tls_server_config": tls_section(max_version="TLS12")}
    )
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    exporter.start()
    result = subprocess.run(
        [tool("openssl"), "s_client", "-connect", f"127.0.0.1:{exporter.port}",
         "-CAfile", str(pki.ca_file), "-brief"],
        input="", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Protocol version: TLSv1.2" in result.stdout + result.stderr


@pytest.mark.curl
def test_mtls_refuses_a_client_without_a_certificate(pki, mutual_tls) -> None:
    result = curl("--cacert", str(pki.ca_file), "--user", f"{USER}:{PASSWORD}",
                  f"https://127.0.0.1:{mutual_tls.port}/metrics")  # fmt: skip
    assert result.returncode != 0
    assert "notte_up" not in result.stdout


@pytest.mark.curl
def test_mtls_serves_a_client_with_a_certificate(pki, mutual_tls) -> None:
    result = curl("--cacert", str(pki.ca_file), "--cert", str(pki.client_cert_file),
                  "--key", str(pki.client_key_file), "--user", f"{USER}:{PASSWORD}",
                  f"https://127.0.0.1:{mutual_tls.port}/metrics")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "notte_up 1.0" in result.stdout


@pytest.mark.prometheus
def test_prometheus_scrapes_over_mtls_with_basic_auth(pki, mutual_tls, tmp_path: Path) -> None:
    if not Path(PROMETHEUS).exists():
        pytest.fail("prometheus is missing: make test installs it (scripts/install-system-deps.sh)")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{
            "job_name": "notte-exporter",
            "scheme": "https",
            "tls_config": {"ca_file": str(pki.ca_file), "cert_file": str(pki.client_cert_file),
                           "key_file": str(pki.client_key_file)},
            "basic_auth": {"username": USER, "password": PASSWORD},
            "static_configs": [{"targets": [f"127.0.0.1:{mutual_tls.port}"]}],
        }],
    }  # fmt: skip
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config_path}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            target = wait_for_target(f"http://127.0.0.1:{port}", timeout=90)
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert target["health"] == "up", (target, (tmp_path / "prometheus.log").read_text()[-2000:])
    assert target["scrapeUrl"].startswith("https://")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_target(base: str, timeout: float) -> dict:
    """The scrape target once Prometheus has scraped it (up or down), bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        try:
            targets = httpx.get(f"{base}/api/v1/targets", timeout=5).json()["data"]
            active = targets["activeTargets"]
            if active and active[0]["health"] != "unknown":
                last = active[0]
                if last["health"] == "up":
                    return last
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    return last
