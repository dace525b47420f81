"""The Helm chart, rendered by the real Helm engine for its default values and every
ci/*-values.yaml scenario: valid Kubernetes objects, a hardened pod, the API key only in a
Secret mounted as a file, and optional parts that appear only when asked for."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from kubernetes_validate.utils import validate
from packaging_helpers import (
    JOB_NAME,
    KUBERNETES_VERSION,
    NAMESPACE,
    SCENARIOS,
    Rendered,
    scenario_values,
)

# Prometheus Operator CRDs: kubernetes-validate has no schema for them, so their structure
# is checked by the ServiceMonitor and PrometheusRule tests below.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
SERVICE_MONITOR_SPEC_FIELDS = {"selector", "namespaceSelector", "endpoints", "targetLabels"}
ENDPOINT_FIELDS = {"port", "path", "scheme", "tlsConfig", "basicAuth", "interval", "scrapeTimeout",
                   "relabelings", "metricRelabelings"}  # fmt: skip
RELABEL_FIELDS = {"action", "sourceLabels", "separator", "targetLabel", "regex", "replacement"}
API_KEY = "sk-notte-test-0123456789abcdef"
DNS_1123_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest, render) -> Rendered:
    rendered: Rendered = render(scenario_values(request.param))
    return rendered


# --- Every scenario -----------------------------------------------------------------------


def test_every_rendered_kubernetes_object_validates_strictly(scenario: Rendered) -> None:
    for obj in scenario.objects:
        if obj["kind"] in OPERATOR_KINDS:
            continue
        validate(obj, KUBERNETES_VERSION, strict=True)


def test_every_object_has_a_valid_name_and_the_chart_labels(scenario: Rendered) -> None:
    for obj in scenario.objects:
        metadata = obj["metadata"]
        assert DNS_1123_NAME.match(metadata["name"]), metadata["name"]
        assert len(metadata["name"]) <= 63
        labels = metadata["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"].startswith("notte-exporter-")


@pytest.mark.parametrize("name", SCENARIOS)
def test_chart_lints_cleanly_in_strict_mode(chart_dir: Path, name: str) -> None:
    report = helm.lint(
        chart_dir,
        scenario_values(name),
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{KUBERNETES_VERSION}",
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [], report
    assert problems == [], report


def test_pod_and_container_are_hardened(scenario: Rendered) -> None:
    pod = scenario.pod_spec()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert "hostNetwork" not in pod
    assert "hostPID" not in pod
    context = scenario.container()["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 65532
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_probes_ask_healthz_and_readyz_on_the_named_port(scenario: Rendered) -> None:
    container = scenario.container()
    (port,) = container["ports"]
    assert port["name"] == "http"
    # scheme: HTTPS when the scenario serves TLS (test_chart_tls.py).
    liveness = {k: v for k, v in container["livenessProbe"]["httpGet"].items() if k != "scheme"}
    readiness = {k: v for k, v in container["readinessProbe"]["httpGet"].items() if k != "scheme"}
    assert liveness == {"path": "/healthz", "port": "http"}
    assert readiness == {"path": "/readyz", "port": "http"}
    listen = scenario.flag("web.listen-address")
    assert listen == f":{port['containerPort']}"


def test_service_targets_the_exporter_pods_on_the_named_port(scenario: Rendered) -> None:
    service = scenario.one("Service")
    pod_labels = scenario.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"


def test_service_account_mounts_no_token(scenario: Rendered) -> None:
    account = scenario.one("ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert scenario.pod_spec()["serviceAccountName"] == account["metadata"]["name"]


# --- Defaults -----------------------------------------------------------------------------


def test_defaults_render_only_the_core_objects(render) -> None:
    kinds = sorted(obj["kind"] for obj in render({}).objects)
    assert kinds == ["Deployment", "Service", "ServiceAccount"]


def test_defaults_set_no_resources(render) -> None:
    assert "resources" not in render({}).container()


def test_defaults_listen_on_the_contract_port_and_path(render) -> None:
    rendered = render({})
    assert rendered.flag("web.listen-address") == ":10717"
    assert rendered.flag("web.telemetry-path") == "/metrics"
    assert rendered.one("Service")["spec"]["ports"][0]["port"] == 10717


def test_image_tag_defaults_to_the_app_version_which_is_the_package_version(
    render, chart: helm.Chart
) -> None:
    from packaging_helpers import package_version

    app_version = chart.metadata["appVersion"]
    assert app_version == package_version()
    assert render({}).container()["image"].endswith(f":{app_version}")


def test_image_digest_pins_the_image(render) -> None:
    digest = "sha256:" + "a" * 64
    image = render({"image": {"digest": digest}}).container()["image"]
    assert image == f"ghcr.io/notte-exporter/notte-exporter@{digest}"


def test_notes_tell_how_to_reach_the_metrics(render) -> None:
    notes = render({}).notes
    assert "kubectl -n monitoring port-forward service/notte-notte-exporter 10717:10717" in notes
    assert "http://127.0.0.1:10717/metrics" in notes
    assert "no Notte API key is configured" in notes


def test_notes_warn_that_demo_data_is_made_up(render) -> None:
    notes = render({"demo": {"enabled": True}}).notes
    assert "WARNING: DEMO MODE IS ON (demo.enabled=true)" in notes
    assert "--set demo.enabled=false" in notes
    assert "DEMO MODE" not in render({}).notes


def test_notes_do_not_warn_about_a_missing_key_when_one_is_set(render) -> None:
    notes = render({"notte": {"existingSecret": {"name": "k"}}}).notes
    assert "no Notte API key" not in notes


# --- The API key --------------------------------------------------------------------------


def test_chart_created_secret_holds_the_key_and_is_mounted_as_a_file(render) -> None:
    rendered = render({"notte": {"apiKey": API_KEY}})
    secret = rendered.one("Secret")
    assert base64.b64decode(secret["data"]["api-key"]).decode() == API_KEY
    _assert_key_file_comes_from(rendered, secret["metadata"]["name"], "api-key")


def test_existing_secret_is_mounted_as_a_file_and_no_secret_is_created(render) -> None:
    rendered = render({"notte": {"existingSecret": {"name": "my-notte", "key": "token"}}})
    assert rendered.of_kind("Secret") == []
    _assert_key_file_comes_from(rendered, "my-notte", "token")


def _assert_key_file_comes_from(rendered: Rendered, secret_name: str, key: str) -> None:
    volumes = {v["name"]: v for v in rendered.pod_spec()["volumes"]}
    secret_volume = volumes["api-key"]["secret"]
    assert secret_volume["secretName"] == secret_name
    (item,) = secret_volume["items"]
    assert item["key"] == key
    mount = next(m for m in rendered.container()["volumeMounts"] if m["name"] == "api-key")
    assert mount["readOnly"] is True
    assert rendered.flag("notte.api-key-file") == f"{mount['mountPath']}/{item['path']}"


def test_api_key_appears_nowhere_but_in_its_secret(render) -> None:
    values = {
        "notte": {"apiKey": API_KEY},
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboards": {"enabled": True},
        "podDisruptionBudget": {"enabled": True},
        "networkPolicy": {"enabled": True},
    }
    rendered = render(values)
    encoded = base64.b64encode(API_KEY.encode()).decode()
    for obj in rendered.objects:
        if obj["kind"] == "Secret":
            continue
        text = json.dumps(obj)
        assert API_KEY not in text, obj["kind"]
        assert encoded not in text, obj["kind"]
    assert API_KEY not in rendered.notes
    container = rendered.container()
    assert not any(API_KEY in arg for arg in container["args"])
    assert "env" not in container


def test_secret_checksum_annotation_is_only_a_hash(render) -> None:
    annotations = render({"notte": {"apiKey": API_KEY}}).one("Deployment")["spec"]["template"][
        "metadata"
    ]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/secret"])


def test_changing_the_key_rolls_the_pod(render) -> None:
    def checksum(key: str) -> str:
        rendered = render({"notte": {"apiKey": key}})
        template = rendered.one("Deployment")["spec"]["template"]
        return str(template["metadata"]["annotations"]["checksum/secret"])

    assert checksum("key-one") != checksum("key-two")


# --- Every exporter setting ---------------------------------------------------------------

# Every flag of the contract that configures a running exporter (not --once/--version/--help).
EXPORTER_FLAGS = {
    "web.listen-address",
    "web.telemetry-path",
    "web.max-requests",
    "web.config.file",
    "config.file",
    "notte.api-url",
    "notte.api-key-file",
    "notte.page-size",
    "notte.max-pages",
    "notte.only-current-token",
    "notte.timeout",
    "notte.retries",
    "notte.concurrency",
    "notte.max-response-bytes",
    "poll.interval",
    "poll.timeout",
    "sessions.limit",
    "sessions.detail-limit",
    "sessions.idle-threshold",
    "sessions.overdue-grace",
    "sessions.lookup-budget",
    "sessions.pending-timeout",
    "usage.interval",
    "reaper.config.file",
    "log.level",
    "log.format",
    "demo",
    "demo.profile",
    "demo.seed",
    "demo.speed",
}


def test_every_exporter_flag_is_reachable_from_values(render) -> None:
    reached: set[str] = set()
    for name in ("all-settings", "dashboards", "accounts"):
        for arg in render(scenario_values(name)).args():
            reached.add(arg.removeprefix("--").partition("=")[0])
    assert reached >= EXPORTER_FLAGS, EXPORTER_FLAGS - reached


def test_all_settings_scenario_renders_each_value_as_its_flag(render) -> None:
    rendered = render(scenario_values("all-settings"))
    expected = {
        "web.listen-address": ":9000",
        "web.telemetry-path": "/probe/metrics",
        "web.max-requests": "20",
        "web.config.file": "/etc/notte-exporter/web/web-config.yml",
        "notte.api-url": "https://api.notte.example",
        "notte.page-size": "50",
        "notte.max-pages": "10",
        "notte.timeout": "5s",
        "notte.retries": "1",
        "notte.concurrency": "2",
        "notte.max-response-bytes": "16MiB",
        "poll.interval": "1m",
        "poll.timeout": "45s",
        "sessions.limit": "25",
        "sessions.detail-limit": "5",
        "sessions.idle-threshold": "2m",
        "sessions.overdue-grace": "30s",
        "sessions.lookup-budget": "3",
        "sessions.pending-timeout": "30m",
        "usage.interval": "10m",
        "log.format": "json",
        # extraArgs come last, so they win over the chart's own flags.
        "log.level": "warning",
    }
    assert {flag: rendered.flag(flag) for flag in expected} == expected
    assert "--notte.only-current-token" in rendered.args()
    env = {e["name"]: e["value"] for e in rendered.container()["env"]}
    assert env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert rendered.container()["resources"]["limits"] == {"memory": "128Mi"}


def test_the_usage_collector_is_on_by_default_every_5m(render) -> None:
    rendered = render({})
    assert rendered.flag("usage.interval") == "5m"
    assert rendered.flag("sessions.pending-timeout") == "15m"
    assert "--no-collector.usage" not in rendered.args()


def test_usage_enabled_false_switches_the_usage_collector_off(render) -> None:
    rendered = render({"usage": {"enabled": False, "interval": "1m"}})
    assert "--no-collector.usage" in rendered.args()
    assert rendered.flag("usage.interval") is None


def test_large_numbers_render_as_plain_integers(render) -> None:
    rendered = render({"sessions": {"limit": 1000000}, "notte": {"maxPages": 2000000}})
    assert rendered.flag("sessions.limit") == "1000000"
    assert rendered.flag("notte.max-pages") == "2000000"


def test_plain_seconds_durations_pass_through(render) -> None:
    rendered = render({"poll": {"interval": 45, "timeout": 2.5}})
    assert rendered.flag("poll.interval") == "45"
    assert rendered.flag("poll.timeout") == "2.5"


def test_unset_optional_settings_leave_the_exporter_defaults(render) -> None:
    rendered = render({})
    for flag in ("poll.timeout", "sessions.limit", "notte.api-key-file"):
        assert rendered.flag(flag) is None
    assert "--demo" not in rendered.args()
    assert "--notte.only-current-token" not in rendered.args()


# --- ServiceMonitor -----------------------------------------------------------------------


def test_service_monitor_scrapes_the_service_as_job_notte_exporter(render) -> None:
    rendered = render(scenario_values("monitors-and-rules"))
    monitor = rendered.one("ServiceMonitor")
    service = rendered.one("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) <= SERVICE_MONITOR_SPEC_FIELDS
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert set(endpoint) <= ENDPOINT_FIELDS
    for relabeling in endpoint["relabelings"] + endpoint["metricRelabelings"]:
        assert set(relabeling) <= RELABEL_FIELDS
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "30s"
    assert endpoint["scrapeTimeout"] == "10s"
    job = endpoint["relabelings"][0]
    assert job == {"action": "replace", "targetLabel": "job", "replacement": JOB_NAME}
    assert endpoint["metricRelabelings"][0]["action"] == "drop"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_account_value_labels_every_series_of_the_release(render) -> None:
    values = {"serviceMonitor": {"enabled": True}, "account": "acme-prod"}
    (endpoint,) = render(values).one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["relabelings"][:2] == [
        {"action": "replace", "targetLabel": "job", "replacement": JOB_NAME},
        {"action": "replace", "targetLabel": "account", "replacement": "acme-prod"},
    ]


def test_no_account_value_adds_no_account_label(render) -> None:
    (endpoint,) = render({"serviceMonitor": {"enabled": True}}).one("ServiceMonitor")["spec"][
        "endpoints"
    ]
    assert all(r.get("targetLabel") != "account" for r in endpoint["relabelings"])


def test_service_monitor_follows_a_changed_telemetry_path(render) -> None:
    values = {"serviceMonitor": {"enabled": True}, "web": {"telemetryPath": "/m"}}
    (endpoint,) = render(values).one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["path"] == "/m"


# --- PrometheusRule -----------------------------------------------------------------------


@pytest.mark.prometheus
def test_prometheus_rule_groups_pass_promtool(render, tmp_path: Path) -> None:
    rule = render(scenario_values("monitors-and-rules")).one("PrometheusRule")
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_keeps_prometheus_templates_for_prometheus(render) -> None:
    rule = render({"prometheusRule": {"enabled": True}}).one("PrometheusRule")
    annotations = [
        value
        for group in rule["spec"]["groups"]
        for entry in group["rules"]
        for value in entry.get("annotations", {}).values()
    ]
    assert any("{{ $labels." in text or "{{ $value" in text for text in annotations)


# --- Grafana dashboards -------------------------------------------------------------------


def test_dashboard_config_maps_carry_every_bundled_dashboard(render, chart_dir: Path) -> None:
    rendered = render(scenario_values("dashboards"))
    bundled = {
        p.name: json.loads(p.read_text()) for p in (chart_dir / "files/dashboards").glob("*.json")
    }
    shipped: dict[str, Any] = {}
    for config_map in rendered.of_kind("ConfigMap"):
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["namespace"] == "grafana"
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "Notte"}
        (name,) = config_map["data"]
        shipped[name] = json.loads(config_map["data"][name])
        # Kubernetes refuses ConfigMaps above 1 MiB.
        assert len(json.dumps(config_map)) < 1024 * 1024
    assert shipped == bundled


def test_each_dashboard_gets_its_own_config_map_named_after_it(render, chart_dir: Path) -> None:
    config_maps = render({"dashboards": {"enabled": True}}).of_kind("ConfigMap")
    names = {config_map["metadata"]["name"] for config_map in config_maps}
    expected = {
        f"notte-notte-exporter-dashboard-{path.stem}"[:63].rstrip("-")
        for path in (chart_dir / "files" / "dashboards").glob("*.json")
    }
    assert names == expected


def test_the_cost_dashboard_ships_in_a_config_map_of_its_own(render) -> None:
    config_maps = render({"dashboards": {"enabled": True}}).of_kind("ConfigMap")
    (cost,) = [m for m in config_maps if "notte-cost.json" in m["data"]]
    assert cost["metadata"]["name"] == "notte-notte-exporter-dashboard-notte-cost"
    assert json.loads(cost["data"]["notte-cost.json"])["title"] == "Notte cost"


def test_dashboard_sidecar_label_is_configurable(render) -> None:
    values = {
        "dashboards": {"enabled": True, "label": "grafana_dashboard_notte", "labelValue": "yes"}
    }
    for config_map in render(values).of_kind("ConfigMap"):
        assert config_map["metadata"]["labels"]["grafana_dashboard_notte"] == "yes"
        assert "grafana_dashboard" not in config_map["metadata"]["labels"]


# --- Optional extras ----------------------------------------------------------------------


def test_disruption_budget_and_network_policy_select_the_exporter(render) -> None:
    rendered = render(scenario_values("all-settings"))
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    budget = rendered.one("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert budget["spec"]["maxUnavailable"] == 1
    policy = rendered.one("NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
