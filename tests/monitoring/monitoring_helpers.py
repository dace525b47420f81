"""Shared knowledge of the monitoring tests: bundle paths, the metric catalogue, queries."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULE_FILE = REPO / "prometheus/rules/notte-exporter.rules.yaml"
HELM_RULE_FILE = REPO / "helm/notte-exporter/files/notte-exporter.rules.yaml"
RULE_TESTS = sorted((REPO / "prometheus/tests").glob("*.yaml"))
DASHBOARD_DIR = REPO / "grafana/dashboards"
HELM_DASHBOARD_DIR = REPO / "helm/notte-exporter/files/dashboards"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.glob("*.json"))
RUNBOOK = REPO / "docs/alerts.md"
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
JOB = "notte-exporter"

# The metric catalogue of CONTRACT.md: the only exporter metrics rules and dashboards may use.
HISTOGRAMS = {
    "notte_exporter_poll_duration_seconds",
    "notte_api_request_duration_seconds",
    "notte_session_duration_seconds",
}
CATALOGUE = HISTOGRAMS | {
    "notte_up",
    "notte_exporter_build_info",
    "notte_exporter_last_poll_success_timestamp_seconds",
    "notte_exporter_polls_total",
    "notte_exporter_poll_failures_total",
    "notte_exporter_invalid_sessions_total",
    "notte_api_requests_total",
    "notte_api_retries_total",
    "notte_api_rate_limit_limit",
    "notte_api_rate_limit_remaining",
    "notte_api_rate_limit_reset_timestamp_seconds",
    "notte_sessions_active",
    "notte_sessions_active_with_feature",
    "notte_sessions_active_network_request_bytes",
    "notte_sessions_active_network_response_bytes",
    "notte_sessions_active_with_error",
    "notte_sessions_overdue",
    "notte_sessions_active_idle",
    "notte_sessions_oldest_created_timestamp_seconds",
    "notte_sessions_limit",
    "notte_session_info",
    "notte_session_created_timestamp_seconds",
    "notte_session_last_accessed_timestamp_seconds",
    "notte_sessions_started_total",
    "notte_sessions_closed_total",
    "notte_network_request_bytes_total",
    "notte_network_response_bytes_total",
    # Issue 10: cost.
    "notte_sessions_browser_seconds_total",
    "notte_sessions_idle_seconds_total",
    "notte_usage_cost_dollars",
    "notte_usage_total_cost_dollars",
    "notte_usage_limit_dollars",
    "notte_usage_balance_dollars",
    "notte_usage_total_balance_dollars",
    "notte_usage_limit_exceeded",
    "notte_usage_sessions",
    "notte_usage_functions",
    "notte_usage_info",
    "notte_usage_up",
    "notte_usage_last_success_timestamp_seconds",
    # Issue 21: the reaper.
    "notte_reaper_dry_run",
    "notte_reaper_stops_total",
    "notte_reaper_candidates",
    "notte_reaper_saved_browser_seconds_total",
}
SERIES_NAMES = (
    CATALOGUE
    | {f"{name}_{suffix}" for name in HISTOGRAMS for suffix in ("bucket", "sum", "count")}
    | {"up"}
)

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`')
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_DURATION_OR_NUMBER = re.compile(r"(?<![\w:])\d[\w.]*")


# libyaml's safe loader where PyYAML was built with it: the same documents, parsed in C. The
# rule file is parsed again by each of the hundreds of tests that read it.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)


def rule_groups(path: Path = RULE_FILE) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = load_yaml(path)["groups"]
    return groups


def alert_rules(path: Path = RULE_FILE) -> list[dict[str, Any]]:
    return [rule for group in rule_groups(path) for rule in group["rules"] if "alert" in rule]


def recorded_names(path: Path = RULE_FILE) -> set[str]:
    return {
        rule["record"] for group in rule_groups(path) for rule in group["rules"] if "record" in rule
    }


def referenced_series(expr: str) -> set[str]:
    """Names of the series a PromQL expression reads: `notte_*`, `up` and recording rules.

    String literals go first, so label values never count; the remaining identifiers that
    look like exporter metrics or recording rules (level:metric:operations) are names.
    """
    code = _DURATION_OR_NUMBER.sub(" ", _STRING.sub('""', expr))
    names = set()
    for token in _IDENTIFIER.findall(code):
        if token.startswith("notte_") or ":" in token.strip(":") or token == "up":
            names.add(token)
    return names


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool

    @property
    def label(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def panel_queries(path: Path) -> list[PanelQuery]:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    return [
        PanelQuery(
            dashboard["title"],
            panel["title"],
            target["refId"],
            target["expr"],
            bool(target.get("instant")),
        )
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def all_panel_queries() -> list[PanelQuery]:
    return [query for path in DASHBOARD_FILES for query in panel_queries(path)]


def substitute(expr: str, variables: dict[str, str]) -> str:
    """Replace Grafana template variables (`$name` and `${name}`) as Grafana would."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"no value for template variable ${name} in {expr!r}")
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def run_generator(output_dir: Path, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mixin", "--output-dir", str(output_dir)]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False, timeout=60
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
