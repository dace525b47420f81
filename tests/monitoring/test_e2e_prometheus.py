"""End to end: a real Prometheus scrapes the exporter watching the simulator's leak scenario.

The bundle's alerts are loaded with windows and for-durations shrunk to seconds (the
generator's config overrides); the production recording rules are loaded as committed, so
the committed dashboards' queries run unchanged. The demo runs 60 times faster than real
time, so sessions start, leak and time out within seconds, and its small plan's credits
drain within minutes (GET /usage read every second).
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e_processes import Processes, stop, wait_for
from monitoring_helpers import (
    JOB,
    REPO,
    RULE_FILE,
    PanelQuery,
    all_panel_queries,
    rule_groups,
    run_generator,
    substitute,
)

pytestmark = pytest.mark.prometheus

# Production thresholds, test-sized windows: the leak alert still needs 15% idle timeouts,
# at least 4 of them.
SHORT_WINDOWS = {
    "exporter_down_for": "3s",
    "polls_failing_for": "5s",
    "stale_after": "30s",
    "stale_for": "2s",
    "rate_limited_window": "20s",
    "rate_limited_for": "2s",
    "rate_limit_budget_for": "5s",
    "sessions_ended_window": "30s",
    "leak_window": "30s",
    "leak_for": "3s",
    "errors_for": "3s",
    "overdue_for": "3s",
    "idle_for": "3s",
    "long_running_for": "2s",
    "near_limit_for": "3s",
    # Cost. Leaked browsers wait ~6 idle seconds per wall second whatever the speed, so a
    # 30-second window holds ~180 of them: the floor is a minute here, not ten.
    "usage_limit_exceeded_for": "3s",
    "credits_low_for": "3s",
    "spend_rate_window": "30s",
    "spend_forecast_for": "3s",
    "idle_waste_window": "30s",
    "idle_waste_min_duration": "1m",
    "idle_waste_for": "3s",
    "usage_unavailable_for": "5s",
}
# The alerts the leak scenario must fire. NotteSpendForecastOverLimit gives way to
# NotteUsageLimitExceeded once the credits are gone (~6 wall minutes), so it is waited for
# first; it cannot fire in the last minutes of a UTC month, when no rate passes the limit
# before the month ends.
# The demo's first account runs the leak profile, whose clients abandon most sessions
# whichever key started them: the alerts that name a key may name any of them (which key
# leaks most is test_e2e_who_leaks.py's question, on the steady profile).
LEAK_ALERTS = {
    "NotteSpendForecastOverLimit": {"account": "demo-a"},
    "NotteIdleWasteHigh": {"account": "demo-a"},
    "NotteSessionLeak": {"account": "demo-a"},
    "NotteSessionsOverdue": {"account": "demo-a"},
}
# What an alert judged per key may carry: a key of demo-a, or none (the account-level
# fallback, when no key alone reaches the thresholds).
DEMO_A_KEYS = {"checkout-agent", "crawler", "reporting", "other", None}
ALERT_TIMEOUT = 60.0


@dataclass
class Stack:
    exporter: subprocess.Popen[bytes]
    instance: str
    api: httpx.Client
    started: float
    logs: list[Path]

    def firing(self, alertname: str, **labels: str) -> list[dict[str, Any]] | None:
        """The firing alerts of that name whose labels include ``labels``."""
        alerts = self.api.get("/api/v1/alerts").raise_for_status().json()["data"]["alerts"]
        found = [
            alert
            for alert in alerts
            if alert["labels"]["alertname"] == alertname
            and alert["state"] == "firing"
            and labels.items() <= alert["labels"].items()
        ]
        return found or None

    def wait_firing(self, alertname: str, **labels: str) -> list[dict[str, Any]]:
        return wait_for(
            f"{alertname} {labels} to fire",
            lambda: self.firing(alertname, **labels),
            ALERT_TIMEOUT,
            self.logs,
        )


def compose_rules(tmp_path: Path) -> Path:
    """Committed recording rules + the short variant's alerts and its own recording rules."""
    overrides = tmp_path / "short-windows.yaml"
    overrides.write_text(yaml.safe_dump(SHORT_WINDOWS), encoding="utf-8")
    result = run_generator(tmp_path / "short", overrides)
    assert result.returncode == 0, result.stderr
    short = rule_groups(tmp_path / "short" / RULE_FILE.relative_to(REPO))
    production = rule_groups()
    production_recording = [g for g in production if "record" in g["rules"][0]]
    production_names = {r["record"] for g in production_recording for r in g["rules"]}
    short_recording = [
        rule
        for group in short
        for rule in group["rules"]
        if "record" in rule and rule["record"] not in production_names
    ]
    short_alerts = [group for group in short if "alert" in group["rules"][0]]
    groups = [
        *production_recording,
        {"name": "notte-sessions.rules.short-windows", "rules": short_recording},
        *short_alerts,
    ]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("e2e")
    rules = compose_rules(tmp_path)
    # A reaper in dry run, for the reaper panels: it sends nothing, so the leak stays.
    reaper = tmp_path / "reaper.yaml"
    reaper.write_text("policies: [{name: idle-1m, idle_longer_than: 1m}]\n")
    processes = Processes(tmp_path)
    try:
        exporter, instance = processes.exporter(
            "exporter",
            [
                "--demo",
                "--demo.profile=leak",
                "--demo.speed=60",
                "--poll.interval=1s",
                "--usage.interval=1s",
                # The plan-limit panels and NotteSessionsNearLimit need a limit.
                "--sessions.limit=50",
                f"--reaper.config.file={reaper}",
            ],
        )
        api = processes.prometheus(
            {
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "evaluation_interval": "1s",
                },
                "rule_files": [str(rules)],
                "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [instance]}]}],
            }
        )
        yield Stack(exporter, instance, api, time.time(), processes.logs)
    finally:
        processes.close()


@pytest.fixture(scope="module")
def leaking(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """The stack once the leak scenario has made the leak and cost alerts fire."""
    return {name: stack.wait_firing(name, **labels) for name, labels in LEAK_ALERTS.items()}


def test_leak_scenario_fires_notte_session_leak(stack, leaking):
    alert = leaking["NotteSessionLeak"][0]
    labels = dict(alert["labels"])
    assert labels.pop("key", None) in DEMO_A_KEYS
    assert labels == {
        "alertname": "NotteSessionLeak",
        "severity": "critical",
        "job": JOB,
        "instance": stack.instance,
        "account": "demo-a",
    }
    assert "closed by the platform's idle timeout" in alert["annotations"]["description"]
    assert "?" not in alert["annotations"]["description"]  # the volume query found its number
    assert alert["annotations"]["runbook_url"].endswith("/docs/alerts.md#nottesessionleak")


def test_leak_scenario_fires_notte_sessions_overdue(stack, leaking):
    alerts = leaking["NotteSessionsOverdue"]
    assert {alert["labels"]["reason"] for alert in alerts} <= {"max_duration", "idle_timeout"}
    assert all(alert["labels"]["instance"] == stack.instance for alert in alerts)
    assert all(float(alert["value"]) >= 1 for alert in alerts)


def test_leak_scenario_fires_notte_spend_forecast_over_limit(stack, leaking):
    (alert,) = leaking["NotteSpendForecastOverLimit"]
    assert alert["labels"] == {
        "alertname": "NotteSpendForecastOverLimit",
        "severity": "warning",
        "job": JOB,
        "instance": stack.instance,
        "account": "demo-a",
    }
    assert float(alert["value"]) > 30  # the demo's limit: $25 subscription + $5 top-up
    assert "over the limit of $30.00" in alert["annotations"]["description"]
    assert "?" not in alert["annotations"]["description"]  # every queried number was found


def test_leak_scenario_fires_notte_idle_waste_high(stack, leaking):
    alert = leaking["NotteIdleWasteHigh"][0]
    labels = dict(alert["labels"])
    assert labels.pop("key", None) in DEMO_A_KEYS
    assert labels == {
        "alertname": "NotteIdleWasteHigh",
        "severity": "warning",
        "job": JOB,
        "instance": stack.instance,
        "account": "demo-a",
    }
    # Not bounded by 1 for one key: a session's idle time counts whole when it ends, its
    # browser time as it runs, so a 30 s window can hold more of the first.
    assert float(alert["value"]) > 0.25
    assert "?" not in alert["annotations"]["description"]


def test_usage_unavailable_is_quiet_while_usage_is_read(stack, leaking):
    assert stack.firing("NotteUsageUnavailable") is None


def test_exporter_down_is_quiet_while_the_exporter_runs(stack, leaking):
    assert stack.firing("NotteExporterDown") is None


def _has_finite_value(result: list[dict[str, Any]]) -> bool:
    samples = [s["value"] for s in result if "value" in s]
    samples += [v for s in result for v in s.get("values", [])]
    return any(math.isfinite(float(value)) for _, value in samples)


@pytest.mark.parametrize("query", all_panel_queries(), ids=lambda q: q.label)
def test_dashboard_panel_query_returns_data_from_live_prometheus(stack, leaking, query: PanelQuery):
    now = time.time()
    variables = {
        "job": JOB,
        "account": ".*",
        "instance": stack.instance,
        # Grafana's $__rate_interval for a 1s scrape interval would be 4s; 10s smooths the
        # demo's bursts without hiding anything.
        "__rate_interval": "10s",
        "__interval": "1s",
        "__range": f"{max(int(now - stack.started), 1)}s",
    }
    expr = substitute(query.expr, variables)
    if query.instant:
        response = stack.api.get("/api/v1/query", params={"query": expr, "time": now})
    else:
        params = {"query": expr, "start": stack.started, "end": now, "step": 1}
        response = stack.api.get("/api/v1/query_range", params=params)
    body = response.json()
    assert body["status"] == "success", f"{expr}: {body.get('error')}"
    assert body["data"]["result"], f"{query.label} returned nothing: {expr}"
    assert _has_finite_value(body["data"]["result"]), f"{query.label} only NaN: {expr}"


def test_exporter_down_fires_once_the_exporter_stops(stack, leaking):
    stop(stack.exporter)
    alerts = stack.wait_firing("NotteExporterDown")
    assert [alert["labels"] for alert in alerts] == [
        {
            "alertname": "NotteExporterDown",
            "cause": "scrape_failed",
            "severity": "critical",
            "job": JOB,
            "instance": stack.instance,
        }
    ]
