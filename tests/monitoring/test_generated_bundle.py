"""The committed bundle is exactly what `python -m mixin` generates, and the chart has copies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from monitoring_helpers import (
    DASHBOARD_DIR,
    HELM_DASHBOARD_DIR,
    REPO,
    RULE_FILE,
    load_yaml,
    run_generator,
)

GENERATED_DIRS = ("prometheus/rules", "grafana/dashboards", "helm/notte-exporter/files", "docs")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    result = run_generator(out)
    assert result.returncode == 0, result.stderr
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for directory in GENERATED_DIRS
        if (root / directory).exists()
        for path in sorted((root / directory).rglob("*"))
        if path.is_file()
    }


def test_generator_output_equals_the_committed_files(generated):
    produced = _files(generated)
    assert produced, "the generator wrote nothing"
    for relative, content in produced.items():
        committed = REPO / relative
        assert committed.exists(), f"{relative} is generated but not committed"
        assert committed.read_bytes() == content, f"{relative} differs: run `make generate`"


def test_no_stale_generated_dashboards_are_committed(generated):
    for directory in (DASHBOARD_DIR, HELM_DASHBOARD_DIR):
        committed = {path.name for path in directory.glob("*.json")}
        produced = {path.name for path in (generated / directory.relative_to(REPO)).glob("*.json")}
        assert committed == produced


def test_helm_chart_dashboards_equal_the_bundle_dashboards():
    dashboards = sorted(DASHBOARD_DIR.glob("*.json"))
    assert [path.name for path in dashboards] == [
        path.name for path in sorted(HELM_DASHBOARD_DIR.glob("*.json"))
    ]
    for path in dashboards:
        assert (HELM_DASHBOARD_DIR / path.name).read_bytes() == path.read_bytes()


def test_config_overrides_change_rules_dashboards_and_runbook_together(tmp_path):
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(
        "leak_share: 0.5\nleak_window: 30m\nsessions_ended_window: 2h\n", encoding="utf-8"
    )
    result = run_generator(tmp_path / "out", overrides)
    assert result.returncode == 0, result.stderr
    rules = (tmp_path / "out/prometheus/rules/notte-exporter.rules.yaml").read_text()
    assert "instance:notte_sessions_closed_idle_timeout:ratio2h" in rules
    (leak,) = [
        rule["expr"]
        for group in yaml.safe_load(rules)["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "NotteSessionLeak"
    ]
    assert 'close_reason="idle_timeout"}[30m]))' in leak
    assert 'close_reason!="unknown"}[30m]))\n' in leak
    assert "> 0.5\n" in leak
    dashboard = (tmp_path / "out/grafana/dashboards/notte-sessions.json").read_text()
    assert "[2h]" in dashboard
    assert "Leak share (2h)" in dashboard
    runbook = (tmp_path / "out/docs/alerts.md").read_text()
    assert "> 50% of sessions ended in 30m closed by idle timeout" in runbook


def test_cost_config_overrides_change_rules_dashboard_and_runbook_together(tmp_path):
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(
        "idle_waste_share: 0.5\nidle_waste_window: 2h\nspend_rate_window: 1d\n", encoding="utf-8"
    )
    result = run_generator(tmp_path / "out", overrides)
    assert result.returncode == 0, result.stderr
    rules = (tmp_path / "out/prometheus/rules/notte-exporter.rules.yaml").read_text()
    assert "instance:notte_sessions_idle_waste:ratio2h > 0.5" in rules
    assert 'deriv(notte_usage_total_cost_dollars{job="notte-exporter"}[1d])' in rules
    dashboard = (tmp_path / "out/grafana/dashboards/notte-cost.json").read_text()
    assert "Idle waste share (2h)" in dashboard
    assert "[1d]" in dashboard
    runbook = (tmp_path / "out/docs/alerts.md").read_text()
    assert "> 50% of browser seconds in 2h were idle time" in runbook


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("leak_shar: 0.5\n", "unknown mixin config field(s): leak_shar"),
        ("leak_for: soon\n", "leak_for: not a Prometheus duration: 'soon'"),
        ("errors_share: 2\n", "errors_share: 2 is not a share in (0, 1]"),
        ("idle_waste_min_duration: 10\n", "idle_waste_min_duration: not a Prometheus duration"),
        (
            "credits_low_critical_share: 0.3\n",
            "credits_low_critical_share must be below credits_low_warning_share",
        ),
    ],
)
def test_generator_refuses_bad_config_overrides(tmp_path, overrides, message):
    path = tmp_path / "overrides.yaml"
    path.write_text(overrides, encoding="utf-8")
    result = run_generator(tmp_path / "out", path)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_generated_rule_file_says_it_is_generated():
    assert RULE_FILE.read_text(encoding="utf-8").startswith("# Generated by `python -m mixin`")
    assert load_yaml(RULE_FILE)["groups"]
