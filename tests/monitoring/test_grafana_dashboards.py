"""The Grafana dashboards: portable, complete, and made of valid catalogue-only PromQL."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace
from typing import Any

import pytest
import yaml
from mixin.config import DEFAULT
from mixin.dashboards import dashboards
from monitoring_helpers import (
    DASHBOARD_FILES,
    JOB,
    PROMTOOL,
    REPO,
    SERIES_NAMES,
    all_panel_queries,
    panels,
    recorded_names,
    referenced_series,
    substitute,
)

# What Grafana would substitute; any valid values do for parsing.
STATIC_VARIABLES = {
    "job": JOB,
    "account": ".*",
    "instance": "exporter:10717",
    "datasource": "prometheus",
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "6h",
}
SESSIONS_PANELS = {  # issue 4's list for "Notte sessions"
    "Live sessions by browser type",
    "Session starts by browser type",
    "Session ends by status",
    "Session ends by close reason",
    "Leak and error shares (1h)",
    "Request bytes by browser type",
    "Response bytes by browser type",
    "Session duration percentiles",
    "Idle and overdue sessions",
    "Oldest live sessions",
    "Plan utilisation",
}
EXPORTER_PANELS = {  # issue 4's list for "Notte exporter"
    "Scrape",
    "Notte API",
    "Poll duration",
    "API requests by endpoint and code",
    "API retries by endpoint",
    "Poll failures by reason",
    "Rate-limit budget",
}
COST_PANELS = {  # issue 10's list for "Notte cost"
    "Spend this period by category",
    "Credits left",
    "Balance and limit",
    "Burn rate",
    "Burn rate by category",
    "Days of credit left",
    "Forecast to the end of the month",
    "Browser hours (selected range)",
    "Open browsers by browser type",
    "Idle waste share (6h)",
    "Idle waste this period (estimate)",
    "Idle waste per hour (estimate)",
    "Proxied traffic",
}


def load(path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


DASHBOARDS = {path.name: load(path) for path in DASHBOARD_FILES}


def walk(node: Any, key: str) -> list[Any]:
    """Every value stored under `key` anywhere in a JSON document."""
    found = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                found.append(value)
            found.extend(walk(value, key))
    elif isinstance(node, list):
        for item in node:
            found.extend(walk(item, key))
    return found


def test_every_dashboard_exists():
    assert set(DASHBOARDS) == {"notte-sessions.json", "notte-exporter.json", "notte-cost.json"}


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_has_no_hard_coded_datasource_uid(name):
    dashboard = DASHBOARDS[name]
    datasources = (
        walk(dashboard["panels"], "datasource")
        + walk(dashboard["templating"], "datasource")
        + walk(dashboard["annotations"], "datasource")
    )
    assert datasources
    assert all(ds == {"type": "prometheus", "uid": "${datasource}"} for ds in datasources)
    # The only other uid is the dashboard's own.
    assert walk(dashboard, "uid").count(dashboard["uid"]) == 1
    assert len(walk(dashboard, "uid")) == len(datasources) + 1


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_has_datasource_job_account_and_instance_variables(name):
    variables = {v["name"]: v for v in DASHBOARDS[name]["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["type"] == "query"
    assert "$job" in variables["account"]["definition"]
    assert "$job" in variables["instance"]["definition"]
    assert "$account" in variables["instance"]["definition"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
@pytest.mark.parametrize("variable", ["job", "account", "instance"])
def test_exporter_variables_are_multi_value_with_all_selected(name, variable):
    (found,) = [v for v in DASHBOARDS[name]["templating"]["list"] if v["name"] == variable]
    assert found["multi"] is True
    assert found["includeAll"] is True
    assert found["current"]["value"] == ["$__all"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_all_accounts_also_matches_exporters_without_an_account_label(name):
    (account,) = [v for v in DASHBOARDS[name]["templating"]["list"] if v["name"] == "account"]
    assert account["allValue"] == ".*"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_firing_notte_alerts_annotate_the_time_series_panels(name):
    (annotation,) = DASHBOARDS[name]["annotations"]["list"]
    assert annotation["enable"] is True
    assert annotation["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert annotation["expr"].startswith('ALERTS{alertname=~"Notte.+", alertstate="firing"')
    assert 'job=~"$job"' in annotation["expr"]


@pytest.mark.parametrize("query", all_panel_queries(), ids=lambda q: q.label)
def test_panel_query_reads_no_recording_rule(query):
    # Dashboards imported by hand into a Prometheus without the bundle's rules still work.
    assert not referenced_series(query.expr) & recorded_names()


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_schema_is_recent_and_identity_is_stable(name):
    dashboard = DASHBOARDS[name]
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"] == name.removesuffix(".json")
    assert "id" not in dashboard  # an id would clash with existing dashboards on import


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_data_panel_has_a_unit_and_a_description(name):
    for panel in panels(DASHBOARDS[name]):
        if panel["type"] in {"timeseries", "stat", "gauge"}:
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        if panel["type"] != "row":
            assert panel["description"], panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_sit_on_the_grid_without_overlapping(name):
    taken: set[tuple[int, int]] = set()
    for panel in panels(DASHBOARDS[name]):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_ids_are_unique(name):
    ids = [panel["id"] for panel in panels(DASHBOARDS[name])]
    assert len(ids) == len(set(ids))


def test_sessions_dashboard_has_the_panels_issue_4_lists():
    titles = {panel["title"] for panel in panels(DASHBOARDS["notte-sessions.json"])}
    assert titles >= SESSIONS_PANELS


def test_exporter_dashboard_has_the_panels_issue_4_lists():
    titles = {panel["title"] for panel in panels(DASHBOARDS["notte-exporter.json"])}
    assert titles >= EXPORTER_PANELS


def test_cost_dashboard_has_the_panels_issue_10_lists():
    titles = {panel["title"] for panel in panels(DASHBOARDS["notte-cost.json"])}
    assert titles >= COST_PANELS


def test_sessions_dashboard_has_the_reaper_row_issue_21_lists():
    queries = {
        panel["title"]: " ".join(target["expr"] for target in panel.get("targets", []))
        for panel in panels(DASHBOARDS["notte-sessions.json"])
    }
    assert (
        "sum by (policy, result) (rate(notte_reaper_stops_total"
        in queries["Reaper stops by policy and result"]
    )
    assert "notte_reaper_candidates" in queries["Reaper candidates by policy"]
    assert (
        "notte_reaper_saved_browser_seconds_total"
        in queries["Browser hours saved (selected range)"]
    )


def test_cost_dashboard_puts_a_dollar_value_on_the_reapers_savings():
    (panel,) = [
        panel
        for panel in panels(DASHBOARDS["notte-cost.json"])
        if "notte_reaper_saved_browser_seconds_total" in str(panel.get("targets"))
        and "notte_usage_cost_dollars" in str(panel.get("targets"))
    ]
    assert panel["fieldConfig"]["defaults"]["unit"] == "currencyUSD"
    assert "(estimate)" in panel["title"]


def test_cost_dashboard_shows_dollars_in_dollars():
    for panel in panels(DASHBOARDS["notte-cost.json"]):
        exprs = " ".join(target["expr"] for target in panel.get("targets", []))
        if "_dollars" in exprs and "Days" not in panel["title"] and "share" not in panel["title"]:
            assert panel["fieldConfig"]["defaults"]["unit"] == "currencyUSD", panel["title"]


def test_cost_dashboard_labels_the_idle_waste_dollars_as_an_estimate():
    waste_dollars = [
        panel
        for panel in panels(DASHBOARDS["notte-cost.json"])
        if "notte_usage_cost_dollars" in str(panel.get("targets"))
        and "notte_sessions_idle_seconds_total" in str(panel.get("targets"))
    ]
    assert len(waste_dollars) == 2
    for panel in waste_dollars:
        assert "(estimate)" in panel["title"]
        assert "estimate" in panel["description"].lower()


def test_oldest_sessions_table_reads_the_per_session_series():
    (table,) = [
        p
        for p in panels(DASHBOARDS["notte-sessions.json"])
        if p["type"] == "table" and p["title"] == "Oldest live sessions"
    ]
    exprs = " ".join(target["expr"] for target in table["targets"])
    assert "notte_session_info" in exprs
    assert "notte_session_created_timestamp_seconds" in exprs
    assert all(target["format"] == "table" and target["instant"] for target in table["targets"])


@pytest.mark.prometheus
def test_every_panel_query_is_valid_promql(tmp_path):
    # promtool 2.42 has no PromQL parser command; a rule file of the queries is checked by
    # the same parser Prometheus uses, without a server.
    queries = all_panel_queries()
    rules = {
        "groups": [
            {
                "name": f"query-{index}",
                "rules": [
                    {
                        "record": f"dashboard:query:{index}",
                        "expr": substitute(query.expr, STATIC_VARIABLES),
                    }
                ],
            }
            for index, query in enumerate(queries)
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


@pytest.mark.parametrize("query", all_panel_queries(), ids=lambda q: q.label)
def test_panel_query_reads_only_catalogue_metrics_and_bundle_recording_rules(query):
    names = referenced_series(query.expr)
    assert names, "a query that reads no series"
    assert names <= SERIES_NAMES | recorded_names()


# Series of the process, not of an account: in config mode (issue 22) they carry no account,
# so they also match the empty one and stay in view whichever accounts are selected.
PROCESS_SERIES = {"up", "notte_exporter_build_info"}
ACCOUNT_SCOPE = 'job=~"$job", account=~"$account", instance=~"$instance"'
PROCESS_SCOPE = 'job=~"$job", account=~"$account|", instance=~"$instance"'


@pytest.mark.parametrize("query", all_panel_queries(), ids=lambda q: q.label)
def test_panel_query_is_scoped_to_the_selected_job_account_and_instance(query):
    names = referenced_series(query.expr)
    process = names & PROCESS_SERIES
    assert query.expr.count(ACCOUNT_SCOPE) >= len(names - process)
    assert query.expr.count(PROCESS_SCOPE) >= len(process)
    for name in process:
        assert f"{name}{{{PROCESS_SCOPE}}}" in query.expr, query.expr


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
@pytest.mark.parametrize("variable", ["account", "instance"])
def test_account_and_instance_variables_read_notte_up_which_every_account_has_in_both_modes(
    name, variable
):
    # notte_exporter_build_info is one series per process, without account in config mode.
    (found,) = [v for v in DASHBOARDS[name]["templating"]["list"] if v["name"] == variable]
    assert found["definition"].startswith('label_values(notte_up{job=~"$job"')
    assert found["query"]["query"] == found["definition"]


@pytest.mark.parametrize("query", all_panel_queries(), ids=lambda q: q.label)
def test_every_per_exporter_grouping_keeps_the_account_apart(query):
    # Issue 22: in config mode one exporter (job, instance) serves several accounts, so a
    # grouping meant to keep exporters apart must name the account too.
    for grouping in re.findall(r"\b(?:by|on) \(([^)]*)\)", query.expr):
        labels = {label.strip() for label in grouping.split(",")}
        if "instance" in labels:
            assert "account" in labels, (query.label, grouping)


def _who_leaks_panels() -> dict[str, dict[str, Any]]:
    dashboard = DASHBOARDS["notte-sessions.json"]
    found: dict[str, dict[str, Any]] = {}
    inside = False
    for panel in panels(dashboard):
        if panel["type"] == "row":
            inside = panel["title"] == "Who leaks"
        elif inside:
            found[panel["title"]] = panel
    return found


def test_sessions_dashboard_has_the_who_leaks_row_issue_22_lists():
    found = _who_leaks_panels()
    assert set(found) == {
        "Leak share by key (1h)",
        "Idle waste share by key (6h)",
        "Live sessions by key",
        "Top 10 keys by idle waste (selected range)",
        "Browser dollars by key (estimate)",
    }
    exprs = {title: panel["targets"][0]["expr"] for title, panel in found.items()}
    assert exprs["Top 10 keys by idle waste (selected range)"].startswith("topk(10,")
    assert "[$__range]" in exprs["Top 10 keys by idle waste (selected range)"]
    assert "notte_usage_cost_dollars{" in exprs["Browser dollars by key (estimate)"]
    assert 'category="browser"' in exprs["Browser dollars by key (estimate)"]
    assert "notte_sessions_active{" in exprs["Live sessions by key"]


def test_who_leaks_row_groups_keys_within_their_account():
    # A key name is unique only within its account: pooling by key alone would add one
    # account's "other" to another's.
    for title, panel in _who_leaks_panels().items():
        for target in panel["targets"]:
            groupings = re.findall(r"\bby \(([^)]*)\)", target["expr"])
            assert groupings, title
            assert all("account" in grouping for grouping in groupings), (title, groupings)
            assert "by (account, key)" in target["expr"], title


def test_who_leaks_dollars_are_labelled_an_estimate_in_dollars():
    panel = _who_leaks_panels()["Browser dollars by key (estimate)"]
    assert "estimate" in panel["description"].lower()
    (override,) = panel["fieldConfig"]["overrides"]
    assert override["properties"] == [{"id": "unit", "value": "currencyUSD"}]


def test_alert_annotations_name_the_target_labels_the_bundle_is_built_for():
    config = replace(DEFAULT, instance_label="pod", account_label="tenant")
    for name, built in dashboards(config).items():
        (annotation,) = built["annotations"]["list"]
        assert annotation["textFormat"] == "{{severity}}: {{pod}} {{tenant}}", name
