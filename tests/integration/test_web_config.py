"""--web.config.file: exporter-toolkit's format, checked whole, kept current while running."""

from __future__ import annotations

import logging
import os
import ssl
import subprocess
import sys
import threading

import bcrypt
import httpx
import pytest

from notte_exporter.settings import WebConfigError
from notte_exporter.web.config import LiveWebConfig, decoy_hash, load
from tls_support import PASSWORD, USER, bcrypt_hash, make_pki, tls_section, write_config


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "web")


def test_a_complete_config_loads_with_paths_relative_to_its_folder(pki) -> None:
    path = write_config(pki.folder / "web.yml", {
        "tls_server_config": tls_section(
            client_auth_type="RequireAndVerifyClientCert", client_ca_file="clients-ca.crt",
            min_version="TLS12", max_version="TLS13",
        ),
        "http_server_config": {"http2": False,
                               "headers": {"Strict-Transport-Security": "max-age=60"}},
        "basic_auth_users": {USER: bcrypt_hash()},
    })  # fmt: skip
    config = load(path)
    assert config.tls is not None
    assert config.tls.verify_mode == ssl.CERT_REQUIRED
    assert config.tls.minimum_version == ssl.TLSVersion.TLSv1_2
    assert config.http2 is False
    assert config.headers == (("Strict-Transport-Security", "max-age=60"),)
    assert set(config.users) == {USER}


def test_every_problem_is_reported_at_once(pki, tmp_path) -> None:
    other = make_pki(tmp_path / "other")
    path = write_config(pki.folder / "web.yml", {
        "tls_server_config": {"cert_file": "server.crt", "key_file": str(other.key_file),
                              "client_auth_type": "VerifyClientCertIfGiven", "colour": "blue"},
        "http_server_config": {"headers": {"Server": "mine", "X-Frame-Options": "allow"}},
        "basic_auth_users": {"alice": "plain-text-password"},
        "unknown_section": {},
    })  # fmt: skip
    with pytest.raises(WebConfigError) as caught:
        load(path)
    problems = caught.value.problems
    assert "tls_server_config.colour: unknown key" in problems
    assert "unknown_section: unknown key" in problems
    # Schema problems first: once they are fixed, the rest are checked.
    path = write_config(pki.folder / "web.yml", {
        "tls_server_config": {"cert_file": "missing.crt", "key_file": "server.key"},
        "basic_auth_users": {"alice": "plain-text-password"},
    })  # fmt: skip
    with pytest.raises(WebConfigError) as caught:
        load(path)
    assert any("cert_file" in p and "does not exist" in p for p in caught.value.problems)
    assert "basic_auth_users.alice: not a bcrypt hash" in caught.value.problems
    path = write_config(pki.folder / "web.yml", {
        "tls_server_config": {"cert_file": "server.crt", "key_file": str(other.key_file),
                              "client_auth_type": "VerifyClientCertIfGiven"},
        "http_server_config": {"headers": {"Server": "mine", "X-Frame-Options": "allow"}},
    })  # fmt: skip
    with pytest.raises(WebConfigError) as caught:
        load(path)
    problems = "\n".join(caught.value.problems)
    assert "does not match the certificate" in problems
    assert "client_ca_file: needed with client_auth_type VerifyClientCertIfGiven" in problems
    assert "header 'Server' cannot be configured" in problems
    assert "X-Frame-Options must be one of deny, sameorigin" in problems


@pytest.mark.parametrize(
    ("costs", "decoy_cost"),
    [([5], 5), ([4, 5, 5], 5), ([5, 4, 4], 4), ([4, 5], 5)],
    ids=["one user", "most common", "most common, lower", "a tie: the highest"],
)
def test_the_decoy_takes_the_users_most_common_cost_ties_going_to_the_highest(
    costs, decoy_cost
) -> None:
    users = {f"user{i}": bcrypt_hash(cost=c).encode() for i, c in enumerate(costs)}
    decoy = decoy_hash(users)
    assert decoy.startswith(f"$2b${decoy_cost:02d}$".encode())


@pytest.mark.slow
def test_an_invalid_file_at_start_up_exits_2_listing_every_problem(pki) -> None:
    path = write_config(pki.folder / "web.yml", {
        "tls_server_config": {"cert_file": "missing.crt", "key_file": "server.key"},
        "basic_auth_users": {"alice": "not-bcrypt", "bob": "$2b$nonsense"},
    })  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "notte_exporter", "--demo", "--web.listen-address", "127.0.0.1:0",
         "--web.config.file", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"invalid web config {str(path)!r}" in result.stderr
    assert "missing.crt' does not exist" in result.stderr
    assert "basic_auth_users.alice: not a bcrypt hash" in result.stderr
    assert "basic_auth_users.bob: not a bcrypt hash" in result.stderr


def test_a_broken_edit_keeps_the_last_good_config_and_logs_why(pki, caplog) -> None:
    path = write_config(pki.folder / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    live = LiveWebConfig(path)
    path.write_text("basic_auth_users: [unclosed\n")
    with caplog.at_level(logging.ERROR):
        assert live.reload() is None
    assert "keeping the last good config: not valid YAML" in caplog.text
    assert set(live.current().users) == {USER}


def test_a_good_edit_is_applied_and_says_what_changed(pki) -> None:
    path = write_config(pki.folder / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    live = LiveWebConfig(path)
    write_config(path, {"basic_auth_users": {USER: bcrypt_hash(), "second": bcrypt_hash()}})
    assert live.reload() == "web config reloaded: basic auth users changed"
    assert set(live.current().users) == {USER, "second"}
    assert live.reload() is None


def test_turning_tls_on_while_running_is_refused(pki) -> None:
    path = write_config(pki.folder / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    live = LiveWebConfig(path)
    write_config(path, {"tls_server_config": tls_section()})
    assert live.reload() is None
    assert live.current().tls is None


def test_basic_auth_protects_everything_but_the_probes(pki, make_exporter) -> None:
    path = write_config(pki.folder / "web.yml", {
        "basic_auth_users": {USER: bcrypt_hash()},
        "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
    })  # fmt: skip
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    base = exporter.start().removesuffix("/metrics")
    for page in ("/metrics", "/"):
        denied = httpx.get(base + page, timeout=10)
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith('Basic realm="notte-exporter"')
        assert httpx.get(base + page, auth=(USER, "wrong"), timeout=10).status_code == 401
        assert httpx.get(base + page, auth=(USER, PASSWORD), timeout=10).status_code == 200
    for probe in ("/healthz", "/readyz"):
        assert httpx.get(base + probe, timeout=10).status_code in (200, 503)
    assert httpx.get(base + "/healthz", timeout=10).headers["x-content-type-options"] == "nosniff"


def test_bcrypt_runs_on_worker_threads_never_on_the_servers_loop(
    pki, make_exporter, monkeypatch
) -> None:
    path = write_config(pki.folder / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    base = exporter.start().removesuffix("/metrics")
    threads: list[str] = []
    checkpw = bcrypt.checkpw

    def spied(password: bytes, hashed: bytes) -> bool:
        threads.append(threading.current_thread().name)
        return checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spied)
    with httpx.Client(base_url=base, timeout=10) as client:
        for auth in [(USER, "wrong"), ("mallory", PASSWORD), (USER, PASSWORD), (USER, PASSWORD)]:
            client.get("/metrics", auth=auth)
    assert threads  # the first good login, the wrong one and the unknown user's decoy
    assert all(name.startswith("http_") for name in threads), threads


def test_the_daemon_looks_at_the_web_config_on_a_thread_of_its_own(pki, make_exporter) -> None:
    path = write_config(pki.folder / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    before = {t for t in threading.enumerate() if t.name == "web-config"}
    exporter.start()
    watchers = [t for t in threading.enumerate() if t.name == "web-config" and t not in before]
    assert len(watchers) == 1
    exporter.stop()
    watchers[0].join(timeout=10)
    assert not watchers[0].is_alive()


def test_a_renewed_certificate_is_served_without_a_restart(pki, make_exporter, monkeypatch) -> None:
    path = write_config(pki.folder / "web.yml", {"tls_server_config": tls_section()})
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    exporter.start()
    before = ssl.get_server_certificate(("127.0.0.1", exporter.port))
    pki.renew()
    assert exporter.reload() == ["web config reloaded: certificate files changed"]
    after = ssl.get_server_certificate(("127.0.0.1", exporter.port))
    assert before != after
    assert after.strip() == pki.cert_file.read_text().strip()


def test_a_configured_header_replaces_the_apps_own(pki, make_exporter) -> None:
    csp = "default-src 'none'"
    path = write_config(pki.folder / "web.yml", {
        "http_server_config": {"headers": {"Content-Security-Policy": csp}},
    })  # fmt: skip
    exporter = make_exporter(web_listen_address="127.0.0.1:0", web_config_file=path)
    base = exporter.start().removesuffix("/metrics")
    response = httpx.get(base + "/", timeout=10)
    assert response.headers.get_list("content-security-policy") == [csp]


@pytest.mark.timeout(10)
def test_named_files_that_are_no_regular_files_are_named_as_such_never_waited_on(pki) -> None:
    (pki.folder / "certs").mkdir()
    os.mkfifo(pki.folder / "key.fifo")
    os.mkfifo(pki.folder / "ca.fifo")
    path = write_config(pki.folder / "web.yml", {
        "tls_server_config": tls_section(
            cert_file="certs", key_file="key.fifo",
            client_auth_type="RequireAndVerifyClientCert", client_ca_file="ca.fifo",
        ),
    })  # fmt: skip
    with pytest.raises(WebConfigError) as caught:
        load(path)
    folder = pki.folder
    assert caught.value.problems == [
        f"tls_server_config.cert_file: {str(folder / 'certs')!r}: is a directory, not a "
        "regular file",
        f"tls_server_config.key_file: {str(folder / 'key.fifo')!r}: is a FIFO, not a regular file",
        f"tls_server_config.client_ca_file: {str(folder / 'ca.fifo')!r}: is a FIFO, not a "
        "regular file",
    ]


def test_a_web_config_or_certificate_larger_than_1_mib_is_refused(pki) -> None:
    padding = "#" * (1024 * 1024) + "\n"
    path = write_config(pki.folder / "web.yml", {"tls_server_config": tls_section()})
    with pki.cert_file.open("a") as cert:
        cert.write(padding)
    with pytest.raises(WebConfigError) as caught:
        load(path)
    assert caught.value.problems == [
        f"tls_server_config.cert_file: {str(pki.cert_file)!r}: is larger than 1 MiB"
    ]
    with path.open("a") as config:
        config.write(padding)
    with pytest.raises(WebConfigError) as caught:
        load(path)
    assert caught.value.problems == ["is larger than 1 MiB"]


@pytest.mark.timeout(10)
def test_a_web_config_replaced_by_a_fifo_keeps_the_last_good_config(pki, caplog) -> None:
    path = write_config(pki.folder / "web.yml", {"basic_auth_users": {USER: bcrypt_hash()}})
    live = LiveWebConfig(path)
    path.unlink()
    os.mkfifo(path)
    with caplog.at_level(logging.ERROR):
        assert live.reload() is None
    assert "keeping the last good config: is a FIFO, not a regular file" in caplog.text
    assert set(live.current().users) == {USER}
