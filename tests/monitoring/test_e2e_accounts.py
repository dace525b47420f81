"""End to end, several accounts: two exporters watch two simulated Notte accounts, one real
Prometheus scrapes both, and every dashboard query separates and sums them correctly.

The scrape configs carry the relabelings the Helm chart's ServiceMonitor renders for
`account=alpha` and `account=beta` (one release per account), so the test also proves that
the chart's `account` value gives the dashboards what they select on. No recording rule is
loaded: the dashboards must work without the bundle's rules. Every query runs at one fixed
time, once per account and once for both, the way Grafana substitutes the variables.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import helm_python as helm
import httpx
import pytest
import yaml
from e2e_processes import Processes, wait_for
from monitoring_helpers import (
    JOB,
    REPO,
    PanelQuery,
    all_panel_queries,
    substitute,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.helm]

ACCOUNTS = ("alpha", "beta")
DATA_TIMEOUT = 60.0
RANGE_SECONDS = 10
STEP_SECONDS = 2
CHART = REPO / "helm" / "notte-exporter"
# Prometheus' relabel_config keys for the Prometheus Operator's RelabelConfig fields.
RELABEL_KEYS = {
    "action": "action",
    "sourceLabels": "source_labels",
    "separator": "separator",
    "targetLabel": "target_label",
    "regex": "regex",
    "replacement": "replacement",
}


@dataclass
class Fleet:
    api: httpx.Client
    instances: dict[str, str]  # account -> instance
    started: float
    at: float = 0.0

    def variables(self, accounts: tuple[str, ...]) -> dict[str, str]:
        """What Grafana substitutes with these accounts selected and "All" instances."""
        instances = [self.instances[account] for account in ACCOUNTS]
        return {
            "job": _multi([JOB]),
            "account": _multi(list(accounts)) if accounts != ACCOUNTS else ".*",
            "instance": _multi(instances),
            "__rate_interval": "10s",
            "__interval": "1s",
            "__range": f"{max(int(self.at - self.started), 1)}s",
        }

    def run(self, query: PanelQuery, expr: str) -> list[dict[str, Any]]:
        if query.instant:
            params: dict[str, Any] = {"query": expr, "time": self.at}
            response = self.api.get("/api/v1/query", params=params)
        else:
            params = {
                "query": expr,
                "start": self.at - RANGE_SECONDS,
                "end": self.at,
                "step": STEP_SECONDS,
            }
            response = self.api.get("/api/v1/query_range", params=params)
        body = response.json()
        assert body["status"] == "success", f"{expr}: {body.get('error')}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def panel(self, query: PanelQuery, accounts: tuple[str, ...]) -> dict[tuple, float]:
        """The query's samples by (labels, timestamp), as Grafana would show them."""
        return _samples(self.run(query, substitute(query.expr, self.variables(accounts))))


def _multi(values: list[str]) -> str:
    """A multi-value variable as Grafana writes it into PromQL: (a|b), regex-escaped."""
    escaped = [re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", value) for value in values]
    return escaped[0] if len(escaped) == 1 else f"({'|'.join(escaped)})"


def _samples(result: list[dict[str, Any]]) -> dict[tuple, float]:
    samples: dict[tuple, float] = {}
    for series in result:
        labels = tuple(sorted(series["metric"].items()))
        points = series.get("values") or [series["value"]]
        for timestamp, value in points:
            samples[labels, float(timestamp)] = float(value)
    return samples


def _finite(samples: dict[tuple, float]) -> dict[tuple, float]:
    return {key: value for key, value in samples.items() if math.isfinite(value)}


def _service_monitor_relabelings(account: str) -> list[dict[str, Any]]:
    """The relabelings the chart renders for a release watching `account`."""
    values = {"serviceMonitor": {"enabled": True}, "account": account}
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=f"notte-{account}", namespace="monitoring")
    for path, text in manifests.items():
        if path.endswith("servicemonitor.yaml"):
            (endpoint,) = yaml.safe_load(text)["spec"]["endpoints"]
            return [
                {RELABEL_KEYS[key]: value for key, value in rule.items()}
                for rule in endpoint["relabelings"]
            ]
    raise AssertionError("the chart rendered no ServiceMonitor")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder = tmp_path_factory.mktemp("accounts")
    processes = Processes(folder)
    instances: dict[str, str] = {}
    # A reaper in dry run on each account, for the reaper panels: it sends nothing.
    reaper = folder / "reaper.yaml"
    reaper.write_text("policies: [{name: idle-1m, idle_longer_than: 1m}]\n")
    try:
        for seed, account in enumerate(ACCOUNTS, start=1):
            _, instances[account] = processes.exporter(
                f"exporter-{account}",
                [
                    "--demo",
                    "--demo.profile=leak",
                    f"--demo.seed={seed}",
                    "--demo.speed=60",
                    "--poll.interval=1s",
                    # The cost panels' burn rates need more than one usage read.
                    "--usage.interval=1s",
                    # Different plan limits, so a utilisation that averaged the two
                    # ratios instead of dividing the sums would show.
                    f"--sessions.limit={40 * seed}",
                    f"--reaper.config.file={reaper}",
                ],
            )
        api = processes.prometheus(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                "scrape_configs": [
                    {
                        "job_name": f"serviceMonitor/monitoring/notte-{account}/0",
                        "static_configs": [{"targets": [instances[account]]}],
                        "relabel_configs": _service_monitor_relabelings(account),
                    }
                    for account in ACCOUNTS
                ],
            }
        )
        fleet = Fleet(api, instances, time.time())

        def both_accounts_ended_sessions() -> bool | None:
            query = (
                "sum by (account) (increase(notte_sessions_closed_total"
                f'{{job="{JOB}", close_reason!="unknown"}}[1h]))'
            )
            response = api.get("/api/v1/query", params={"query": query}).json()
            ended = {
                s["metric"].get("account"): float(s["value"][1]) for s in response["data"]["result"]
            }
            enough = all(ended.get(account, 0) >= 5 for account in ACCOUNTS)
            return True if enough and time.time() - fleet.started > RANGE_SECONDS + 5 else None

        wait_for(
            "both accounts to end sessions",
            both_accounts_ended_sessions,
            DATA_TIMEOUT,
            processes.logs,
        )
        # One instant for every query: both accounts and their sum read the same data.
        fleet.at = time.time() - 2
        yield fleet
    finally:
        processes.close()


QUERIES = all_panel_queries()


def _kind(query: PanelQuery) -> str:
    """How the query combines exporters: a ratio of sums, a sum, or one series each."""
    expr = query.expr
    if expr.startswith("sum(") and "\n/\n" in expr:
        return "ratio"
    if expr.startswith(("sum(", "sum by")):
        return "sum"
    if expr.startswith(("histogram_quantile", "time() - min(")):
        return "combined"
    return "per-exporter"


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.label)
def test_every_panel_shows_each_account_alone(fleet, query: PanelQuery) -> None:
    for account in ACCOUNTS:
        samples = _finite(fleet.panel(query, (account,)))
        assert samples, f"{query.label}: nothing for account {account}"
        labelled = {dict(labels).get("account") for labels, _ in samples} - {None}
        assert labelled <= {account}, (query.label, labelled)


@pytest.mark.parametrize("query", [q for q in QUERIES if _kind(q) == "sum"], ids=lambda q: q.label)
def test_summing_panels_show_both_accounts_as_the_sum_of_each(fleet, query) -> None:
    alpha, beta = (fleet.panel(query, (account,)) for account in ACCOUNTS)
    both = fleet.panel(query, ACCOUNTS)
    for key in both.keys() | alpha.keys() | beta.keys():
        expected = alpha.get(key, 0.0) + beta.get(key, 0.0)
        assert both.get(key, 0.0) == pytest.approx(expected, rel=1e-9, abs=1e-9), (key, query)


@pytest.mark.parametrize(
    "query", [q for q in QUERIES if _kind(q) == "ratio"], ids=lambda q: q.label
)
def test_share_panels_divide_the_summed_parts_not_add_the_shares(fleet, query) -> None:
    numerator, denominator = query.expr.split("\n/\n")
    parts = {}
    for name, expr in (("numerator", numerator), ("denominator", denominator)):
        part = PanelQuery(query.dashboard, query.panel, query.ref_id, expr, query.instant)
        parts[name] = [fleet.panel(part, (account,)) for account in ACCOUNTS]
    both = _finite(fleet.panel(query, ACCOUNTS))
    assert both, query.label
    for (labels, timestamp), value in both.items():
        key = ((), timestamp)
        total = sum(p.get(key, 0.0) for p in parts["numerator"])
        whole = sum(p.get(key, 0.0) for p in parts["denominator"])
        assert labels == ()
        assert value == pytest.approx(total / whole, rel=1e-9), (query.label, timestamp)


@pytest.mark.parametrize(
    "query", [q for q in QUERIES if _kind(q) == "per-exporter"], ids=lambda q: q.label
)
def test_per_exporter_panels_show_both_accounts_side_by_side(fleet, query) -> None:
    alpha, beta = (fleet.panel(query, (account,)) for account in ACCOUNTS)
    both = fleet.panel(query, ACCOUNTS)
    assert not alpha.keys() & beta.keys()
    assert both.keys() == alpha.keys() | beta.keys()
    for key, value in both.items():
        expected = alpha.get(key, beta.get(key))
        assert value == pytest.approx(expected, nan_ok=True), (key, query.label)


def test_alert_annotation_query_is_valid_promql_with_every_account_selected(fleet) -> None:
    dashboard = yaml.safe_load((REPO / "grafana/dashboards/notte-sessions.json").read_text())
    (annotation,) = dashboard["annotations"]["list"]
    expr = substitute(annotation["expr"], fleet.variables(ACCOUNTS))
    response = fleet.api.get("/api/v1/query", params={"query": expr, "time": fleet.at}).json()
    assert response["status"] == "success", expr
