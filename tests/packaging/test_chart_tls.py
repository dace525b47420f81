"""The chart's TLS and basic-auth values, rendered by the real Helm engine: the web config in
a Secret mounted as a file, certificates from an existing TLS Secret, HTTPS probes and a
ServiceMonitor that scrapes over HTTPS with tlsConfig and basicAuth."""

from __future__ import annotations

import base64
from typing import Any

import yaml

HASH = "$2b$04$abcdefghijklmnopqrstuuGQp5kL1O6B8S3V9uYfJ5J0m6xP3iY6."
WEB_CONFIG_FILE = "/etc/notte-exporter/web/web-config.yml"

TLS_VALUES: dict[str, Any] = {
    "web": {
        "tls": {"existingSecret": "notte-exporter-tls"},
        "config": {
            "basic_auth_users": {"prometheus": HASH},
            "http_server_config": {"headers": {"Strict-Transport-Security": "max-age=60"}},
        },
    },
    "serviceMonitor": {
        "enabled": True,
        "tlsConfig": {"ca": {"secret": {"name": "notte-exporter-tls", "key": "ca.crt"}},
                      "serverName": "notte-exporter.monitoring.svc"},
        "basicAuth": {"username": {"name": "scrape", "key": "username"},
                      "password": {"name": "scrape", "key": "password"}},
    },
}  # fmt: skip


def web_config(rendered) -> dict[str, Any]:
    (secret,) = [
        s for s in rendered.of_kind("Secret") if s["metadata"]["name"].endswith("-web-config")
    ]
    return yaml.safe_load(base64.b64decode(secret["data"]["web-config.yml"]))


def test_by_default_there_is_no_web_config_and_plain_http(render) -> None:
    rendered = render({})
    assert rendered.flag("web.config.file") is None
    assert rendered.flag("web.max-requests") == "40"
    assert "scheme" not in rendered.container()["livenessProbe"]["httpGet"]


def test_the_web_config_is_a_secret_mounted_as_a_file(render) -> None:
    rendered = render(TLS_VALUES)
    assert rendered.flag("web.config.file") == WEB_CONFIG_FILE
    mounts = {m["name"]: m for m in rendered.container()["volumeMounts"]}
    assert mounts["web-config"]["mountPath"] == "/etc/notte-exporter/web"
    assert "subPath" not in mounts["web-config"]  # a subPath mount never sees an edit
    volumes = {v["name"]: v for v in rendered.pod_spec()["volumes"]}
    assert volumes["web-config"]["secret"]["secretName"] == "notte-notte-exporter-web-config"
    assert web_config(rendered)["basic_auth_users"] == {"prometheus": HASH}


def test_certificates_come_from_the_existing_tls_secret(render) -> None:
    rendered = render(TLS_VALUES)
    volumes = {v["name"]: v for v in rendered.pod_spec()["volumes"]}
    assert volumes["web-tls"]["secret"]["secretName"] == "notte-exporter-tls"
    assert web_config(rendered)["tls_server_config"] == {
        "cert_file": "/etc/notte-exporter/tls/tls.crt",
        "key_file": "/etc/notte-exporter/tls/tls.key",
    }


def test_a_tls_server_config_of_the_values_wins(render) -> None:
    values = {"web": {"tls": {"existingSecret": "tls"}, "config": {"tls_server_config": {
        "cert_file": "/etc/notte-exporter/tls/tls.crt",
        "key_file": "/etc/notte-exporter/tls/tls.key",
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": "/etc/notte-exporter/tls/ca.crt"}}}}  # fmt: skip
    tls = web_config(render(values))["tls_server_config"]
    assert tls["client_auth_type"] == "RequireAndVerifyClientCert"


def test_probes_switch_to_https_when_tls_is_on(render) -> None:
    container = render(TLS_VALUES).container()
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"


def test_the_service_monitor_scrapes_over_https_with_tls_config_and_basic_auth(render) -> None:
    (endpoint,) = render(TLS_VALUES).one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["serverName"] == "notte-exporter.monitoring.svc"
    assert endpoint["basicAuth"]["password"] == {"name": "scrape", "key": "password"}


def test_the_service_monitor_scheme_can_be_set(render) -> None:
    values = {"serviceMonitor": {"enabled": True, "scheme": "https"}}
    (endpoint,) = render(values).one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    (plain,) = render({"serviceMonitor": {"enabled": True}}).one("ServiceMonitor")["spec"][
        "endpoints"
    ]
    assert plain["scheme"] == "http"
