"""The chart's PrometheusRule follows the chart's values, rendered by the real Helm engine:
with the default values it is exactly the bundle's rule file, so the bundle's promtool checks
and unit tests (tests/monitoring/test_alert_rules.py) hold for it too; with a custom job name,
runbook URL, thresholds, severity and a disabled alert it passes `promtool check rules` and
unit tests written for those values."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging_helpers import CHART_SOURCE, REPO, Rendered

RULE_FILE = REPO / "prometheus" / "rules" / "notte-exporter.rules.yaml"
CUSTOM_RULE_TESTS = Path(__file__).parent / "rule_tests" / "custom-values.yaml"
CUSTOM_JOB = "notte"
CUSTOM_RULE_VALUES: dict[str, Any] = {
    "serviceMonitor": {"enabled": True, "jobName": CUSTOM_JOB},
    "prometheusRule": {
        "enabled": True,
        "runbookUrl": "https://runbooks.example.com/notte",
        "alerts": {
            "NotteSessionLeak": {"share": 0.5, "for": "20m", "severity": "page"},
            "NotteSessionsLongRunning": {"after": "90m"},
            "NotteExporterStale": {"enabled": False},
        },
    },
}


def _spec(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.one("PrometheusRule")["spec"]
    return spec


def _write_rules(spec: dict[str, Any], directory: Path) -> Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _rules(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in spec["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def default_spec(render) -> dict[str, Any]:
    return _spec(render({"prometheusRule": {"enabled": True}}))


@pytest.fixture(scope="module")
def custom_spec(render) -> dict[str, Any]:
    return _spec(render(CUSTOM_RULE_VALUES))


# --- Default values -----------------------------------------------------------------------


def test_default_values_render_exactly_the_bundle_rule_file(default_spec) -> None:
    assert default_spec == yaml.safe_load(RULE_FILE.read_text(encoding="utf-8"))


# --- Custom values ------------------------------------------------------------------------


@pytest.mark.prometheus
def test_custom_values_render_rules_that_promtool_accepts(custom_spec, tmp_path) -> None:
    result = _promtool("check", "rules", str(_write_rules(custom_spec, tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_custom_values_pass_their_promtool_unit_tests(custom_spec, tmp_path) -> None:
    _write_rules(custom_spec, tmp_path)
    tests = tmp_path / CUSTOM_RULE_TESTS.name
    shutil.copy(CUSTOM_RULE_TESTS, tests)
    result = _promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_job_selector_follows_the_service_monitor_job_name(custom_spec) -> None:
    text = json.dumps(custom_spec)
    assert 'notte-exporter\\"' not in text
    selectors = re.findall(r'job=\\"([^\\]*)\\"', text)
    assert selectors
    assert set(selectors) == {CUSTOM_JOB}


def test_a_disabled_alert_is_left_out_and_the_others_stay(custom_spec, default_spec) -> None:
    names = {rule.get("alert") for rule in _rules(custom_spec)}
    assert "NotteExporterStale" not in names
    assert names == {rule.get("alert") for rule in _rules(default_spec)} - {"NotteExporterStale"}
    assert [g["name"] for g in custom_spec["groups"]] == [g["name"] for g in default_spec["groups"]]


def test_a_threshold_for_duration_and_severity_come_from_values(custom_spec) -> None:
    (leak,) = [rule for rule in _rules(custom_spec) if rule.get("alert") == "NotteSessionLeak"]
    assert "> 0.5\n" in leak["expr"]
    assert leak["for"] == "20m"
    assert leak["labels"]["severity"] == "page"
    assert "(threshold 50%, and at least 4 such sessions)" in leak["annotations"]["description"]


def test_every_alert_links_the_runbook_url_value(custom_spec) -> None:
    for rule in _rules(custom_spec):
        if "alert" in rule:
            url = rule["annotations"]["runbook_url"]
            assert url == f"https://runbooks.example.com/notte#{rule['alert'].lower()}"


def test_a_group_whose_alerts_are_all_disabled_is_left_out(render) -> None:
    alerts = {
        name: {"enabled": False}
        for name in ("NotteExporterDown", "NotteExporterStale", "NotteApiRateLimited")
    }
    spec = _spec(render({"prometheusRule": {"enabled": True, "alerts": alerts}}))
    assert "notte-exporter" not in [group["name"] for group in spec["groups"]]
    assert all(group["rules"] for group in spec["groups"])


def test_every_bundled_alert_can_be_disabled_from_values() -> None:
    values = yaml.safe_load((CHART_SOURCE / "values.yaml").read_text(encoding="utf-8"))
    alerts = values["prometheusRule"]["alerts"]
    rules = _rules(yaml.safe_load(RULE_FILE.read_text(encoding="utf-8")))
    assert set(alerts) == {rule["alert"] for rule in rules if "alert" in rule}
    assert all(entry["enabled"] is True for entry in alerts.values())


@pytest.mark.parametrize(
    ("alerts", "problem"),
    [
        ({"NotteSessionLeak": {"share": 2}}, "/prometheusRule/alerts/NotteSessionLeak/share"),
        ({"NotteSessionLeak": {"for": "soon"}}, "/prometheusRule/alerts/NotteSessionLeak/for"),
        ({"NotteSessionLeak": {"shares": 0.5}}, "shares"),
        ({"NotteSessionLeek": {"enabled": False}}, "NotteSessionLeek"),
        ({"NotteSessionLeak": {"severity": 'page"'}}, "severity"),
    ],
)
def test_schema_refuses_wrong_alert_values(render, alerts, problem) -> None:
    with pytest.raises(Exception, match=re.escape(problem)):
        render({"prometheusRule": {"enabled": True, "alerts": alerts}})


def test_schema_refuses_a_job_name_that_would_break_the_rules(render) -> None:
    with pytest.raises(Exception, match="jobName"):
        render({"serviceMonitor": {"jobName": 'notte"} or vector(1) #'}})
