"""The rule file is valid, every alert is unit-tested both ways, and alerts are complete."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from mixin.config import format_value
from monitoring_helpers import (
    CATALOGUE,
    HELM_RULE_FILE,
    JOB,
    PROMTOOL,
    REPO,
    RULE_FILE,
    RULE_TESTS,
    RUNBOOK,
    SERIES_NAMES,
    alert_rules,
    load_yaml,
    recorded_names,
    referenced_series,
    rule_groups,
)

pytestmark = pytest.mark.prometheus

EXPECTED_ALERTS = {
    "NotteExporterDown",
    "NotteExporterStale",
    "NotteApiRateLimited",
    "NotteSessionLeak",
    "NotteSessionsOverdue",
    "NotteSessionsIdle",
    "NotteSessionsLongRunning",
    "NotteSessionsNearLimit",
    "NotteSessionErrorsHigh",
    # Issue 10: cost.
    "NotteUsageLimitExceeded",
    "NotteCreditsLow",
    "NotteSpendForecastOverLimit",
    "NotteIdleWasteHigh",
    "NotteUsageUnavailable",
    # Issue 21: the reaper.
    "NotteReaperFailing",
}
# Labels a rule sets itself (besides severity) to tell rules sharing an alert name apart.
STATIC_LABELS = ("severity", "cause")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=60
    )


def test_rule_file_passes_promtool_check_rules():
    result = promtool("check", "rules", str(RULE_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_scrape_config_passes_promtool_check_config():
    result = promtool("check", "config", "prometheus/prometheus.example.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_scrape_config_scrapes_job_notte_exporter_on_port_10717():
    config = load_yaml(REPO / "prometheus/prometheus.example.yml")
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == JOB]
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets
    assert all(target.endswith(":10717") for target in targets)
    assert config["rule_files"] == ["rules/notte-exporter.rules.yaml"]


def test_promtool_unit_tests_pass():
    result = promtool("test", "rules", *(str(path) for path in RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_bundle_has_every_alert_issue_4_asks_for():
    assert {rule["alert"] for rule in alert_rules()} >= EXPECTED_ALERTS


def _alert_cases() -> list[dict]:
    return [
        case
        for path in RULE_TESTS
        for test in load_yaml(path)["tests"]
        for case in test.get("alert_rule_test", [])
    ]


@pytest.mark.parametrize("alert", sorted(EXPECTED_ALERTS))
def test_every_alert_has_a_unit_test_where_it_must_stay_quiet(alert):
    assert any(case["alertname"] == alert and not case["exp_alerts"] for case in _alert_cases())


@pytest.mark.parametrize(
    "rule",
    alert_rules(),
    ids=lambda r: "-".join([r["alert"], *(r["labels"].get(k, "") for k in STATIC_LABELS)]),
)
def test_every_alerting_rule_has_a_unit_test_where_it_fires_with_all_annotations(rule):
    static = {key: rule["labels"][key] for key in STATIC_LABELS if key in rule["labels"]}
    firing = [
        expected
        for case in _alert_cases()
        if case["alertname"] == rule["alert"]
        for expected in case["exp_alerts"]
        if static.items() <= expected["exp_labels"].items()
    ]
    assert firing, f"no firing unit test for {rule['alert']} {static}"
    assert all(set(e["exp_annotations"]) == set(rule["annotations"]) for e in firing)


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_has_severity_summary_description_and_runbook_section(rule):
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()
    url = rule["annotations"]["runbook_url"]
    assert url.endswith("/docs/alerts.md#" + rule["alert"].lower())
    assert f"\n## {rule['alert']}\n" in RUNBOOK.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "rule",
    [rule for rule in alert_rules() if not rule["expr"].startswith(("up{", "absent("))],
    ids=lambda r: r["alert"],
)
def test_every_alert_on_exporter_metrics_names_numbers_in_its_description(rule):
    # "$value" or a queried value: a description without numbers does not say how bad it is.
    # (Alerts on the scrape itself have no number to give beyond their for-duration.)
    assert re.search(r"\$value|\| query", rule["annotations"]["description"])


def test_rules_read_only_catalogue_metrics_and_their_own_recording_rules():
    known = SERIES_NAMES | recorded_names()
    for group in rule_groups():
        for rule in group["rules"]:
            assert referenced_series(rule["expr"]) <= known, rule["expr"]


def test_rules_read_exporter_metrics_only_through_the_job_selector():
    for group in rule_groups():
        for rule in group["rules"]:
            for name in referenced_series(rule["expr"]) & (CATALOGUE | {"up"}):
                selectors = re.findall(rf"\b{name}\b(\{{[^}}]*\}})?", rule["expr"])
                assert all(f'job="{JOB}"' in s for s in selectors), (name, rule["expr"])


def test_recording_rules_are_named_level_metric_operations():
    for name in recorded_names():
        level, metric, operations = name.split(":")
        assert level, name
        assert metric.startswith("notte_"), name
        assert operations, name


def test_recording_rules_come_before_the_alerts_that_read_them():
    kinds = ["record" if "record" in group["rules"][0] else "alert" for group in rule_groups()]
    assert kinds == sorted(kinds, key=lambda kind: kind != "record"), kinds
    for group in rule_groups():
        assert len({"record" in rule for rule in group["rules"]}) == 1, group["name"]


def test_alerts_are_grouped_by_subject():
    groups = {
        group["name"]: {rule["alert"] for rule in group["rules"]}
        for group in rule_groups()
        if "alert" in group["rules"][0]
    }
    assert groups["notte-exporter"] == {
        "NotteExporterDown",
        "NotteExporterStale",
        "NotteApiRateLimited",
    }
    assert groups["notte-sessions"] >= {"NotteSessionLeak", "NotteSessionsNearLimit"}
    assert groups["notte-cost"] == {
        "NotteUsageLimitExceeded",
        "NotteCreditsLow",
        "NotteSpendForecastOverLimit",
        "NotteIdleWasteHigh",
        "NotteUsageUnavailable",
    }
    assert groups["notte-reaper"] == {"NotteReaperFailing"}
    assert all(name.startswith("Notte") for names in groups.values() for name in names)


def _hours(eval_time: str) -> float:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?", eval_time)
    assert match, eval_time
    return int(match.group(1) or 0) + int(match.group(2) or 0) / 60


@pytest.mark.parametrize(
    "alert", ["NotteSpendForecastOverLimit", "NotteUsageLimitExceeded", "NotteCreditsLow"]
)
def test_month_rollover_is_a_quiet_case_of_the_cost_alerts_on_usage(alert):
    # cost-month-end.yaml's series end January (744h) with the alert firing, then roll over.
    (test,) = load_yaml(REPO / "prometheus/tests/cost-month-end.yaml")["tests"]
    cases = [case for case in test["alert_rule_test"] if case["alertname"] == alert]
    assert any(case["exp_alerts"] and _hours(case["eval_time"]) < 744 for case in cases)
    assert any(not case["exp_alerts"] and _hours(case["eval_time"]) > 744 for case in cases)


def test_helm_rule_file_with_its_placeholders_filled_by_the_defaults_is_the_rule_file():
    # The chart's template fills them from values (tests/packaging/test_chart_rules.py);
    # here the mixin's own formatting fills them with the chart's default values.
    values = load_yaml(REPO / "helm/notte-exporter/values.yaml")

    def fill(match: re.Match[str]) -> str:
        value = values
        for key in match.group(1).split("."):
            value = value[key]
        return format_value(value, match.group(2))

    chart_copy = HELM_RULE_FILE.read_text(encoding="utf-8")
    assert list(load_yaml(HELM_RULE_FILE)) == ["groups"]
    filled = re.sub(r"@@([A-Za-z0-9_.]+):([a-z]+)@@", fill, chart_copy)
    assert yaml.safe_load(filled) == load_yaml(RULE_FILE)


_AGGREGATION = re.compile(
    r"\b(?:sum|min|max|avg|count|topk|bottomk|group)\s+(without|by)\s*\(([^)]*)\)"
)


def _aggregations(expr: str) -> list[tuple[str, set[str]]]:
    return [
        (kind, {label.strip() for label in labels.split(",")})
        for kind, labels in _AGGREGATION.findall(expr)
    ]


def test_no_rule_aggregates_the_account_label_away():
    # Issue 22: in config mode one exporter serves several accounts under one job and
    # instance, and `account` is all that keeps them apart.
    for group in rule_groups():
        for rule in group["rules"]:
            for kind, labels in _aggregations(rule["expr"]):
                if kind == "without":
                    assert "account" not in labels, rule["expr"]
                else:
                    assert "account" in labels, rule["expr"]
            assert not re.search(r"\b(?:sum|min|max|avg|count)\s*\(", rule["expr"]), rule["expr"]


@pytest.mark.parametrize("alert", ["NotteSessionLeak", "NotteIdleWasteHigh"])
def test_key_alerts_have_a_config_mode_case_firing_for_one_key_and_one_for_the_account(alert):
    (accounts,) = [path for path in RULE_TESTS if path.name == "accounts.yaml"]
    fired = [
        expected["exp_labels"]
        for test in load_yaml(accounts)["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == alert
        for expected in case["exp_alerts"]
    ]
    assert any({"account", "key"} <= labels.keys() for labels in fired), fired
    assert any("account" in labels and "key" not in labels for labels in fired), fired


@pytest.mark.parametrize("alert", ["NotteSessionLeak", "NotteIdleWasteHigh"])
def test_key_alerts_name_the_key_only_through_a_template_that_is_empty_without_it(alert):
    (rule,) = [rule for rule in alert_rules() if rule["alert"] == alert]
    description = rule["annotations"]["description"]
    assert "{{ with $labels.key }}" in description
    assert "{{ with $labels.account }}" in description
