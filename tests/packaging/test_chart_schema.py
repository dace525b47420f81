"""values.schema.json: wrong values are refused at install time with a message that names
the value and says what is wrong; every shipped scenario is accepted."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
from packaging_helpers import SCENARIOS, scenario_values

REFUSED = [
    pytest.param({"log": {"level": "verbose"}}, "/log/level", "one of", id="log-level-enum"),
    pytest.param({"log": {"format": "text"}}, "/log/format", "'logfmt', 'json'", id="log-format"),
    pytest.param(
        {"poll": {"interval": "30 seconds"}}, "/poll/interval", "does not match", id="duration"
    ),
    pytest.param({"poll": {"interval": -5}}, "/poll/interval", "exclusiveMinimum", id="negative"),
    pytest.param({"web": {"port": 70000}}, "/web/port", "want 65,535", id="port-range"),
    pytest.param({"service": {"port": 0}}, "/service/port", "minimum", id="service-port"),
    pytest.param({"notte": {"pageSize": 500}}, "/notte/pageSize", "want 100", id="page-size"),
    pytest.param({"notte": {"pageSize": "100"}}, "/notte/pageSize", "want integer", id="type"),
    pytest.param({"notte": {"retries": -1}}, "/notte/retries", "minimum", id="retries"),
    pytest.param(
        {"notte": {"apiKey": "k", "existingSecret": {"name": "s"}}},
        "/notte",
        "notte.apiKey and notte.existingSecret.name are mutually exclusive",
        id="key-and-existing-secret",
    ),
    pytest.param(
        {"extraEnv": [{"name": "NOTTE_API_KEY", "value": "literal"}]},
        "/extraEnv/0",
        "NOTTE_API_KEY must not be a literal value",
        id="key-as-env-literal",
    ),
    pytest.param({"sessions": {"limit": 0}}, "/sessions/limit", "minimum", id="limit"),
    pytest.param({"usage": {"enabled": "no"}}, "/usage/enabled", "want boolean", id="usage-on"),
    pytest.param(
        {"usage": {"interval": "5 minutes"}}, "/usage/interval", "does not match", id="usage-every"
    ),
    pytest.param(
        {"sessions": {"pendingTimeout": "soon"}},
        "/sessions/pendingTimeout",
        "does not match",
        id="pending-timeout",
    ),
    pytest.param({"demo": {"profile": "chaos"}}, "/demo/profile", "one of", id="demo-profile"),
    pytest.param({"web": {"telemetryPath": "metrics"}}, "/web/telemetryPath", "pattern", id="path"),
    pytest.param({"notte": {"apiUrl": "api.notte.cc"}}, "/notte/apiUrl", "pattern", id="url"),
    pytest.param({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", "one of", id="pull"),
    pytest.param({"replica": 2}, "", "additional properties 'replica'", id="typo-top-level"),
    pytest.param(
        {"serviceMonitor": {"enable": True}}, "/serviceMonitor", "'enable'", id="typo-nested"
    ),
]


@pytest.mark.parametrize(("values", "where", "message"), REFUSED)
def test_wrong_values_are_refused_with_a_clear_message(
    chart: helm.Chart, values: dict[str, Any], where: str, message: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        chart.validate_schema(values)
    text = str(refused.value)
    assert f"at '{where}'" in text, text
    assert message in text, text


@pytest.mark.parametrize("duration", ["30s", "5m", "1h", "1h30m", "500ms", "30", 30, 2.5], ids=str)
def test_durations_in_every_contract_form_are_accepted(chart: helm.Chart, duration: Any) -> None:
    chart.validate_schema({"poll": {"interval": duration}, "notte": {"timeout": duration}})


def test_empty_poll_timeout_means_the_exporter_default(chart: helm.Chart) -> None:
    chart.validate_schema({"poll": {"timeout": ""}})


def test_rendering_refuses_wrong_values_before_any_template_runs(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmValuesError, match="don't meet the specifications"):
        chart.render({"log": {"level": "loud"}}, name="notte", namespace="monitoring")


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_is_accepted(chart: helm.Chart, name: str) -> None:
    chart.validate_schema(chart.merge_values(scenario_values(name)))


def test_key_from_a_secret_reference_in_extra_env_is_accepted(chart: helm.Chart) -> None:
    reference = {"secretKeyRef": {"name": "notte", "key": "api-key"}}
    chart.validate_schema({"extraEnv": [{"name": "NOTTE_API_KEY", "valueFrom": reference}]})
