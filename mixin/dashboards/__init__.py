"""Every Grafana dashboard of the bundle, by file name: one module each, built from `common`.

Invariants, so that the dashboards work however they are installed:
- Panels query the exporter's raw series, never the bundle's recording rules: a dashboard
  imported by hand into a Prometheus without the rules shows the same numbers.
- `job`, `account` and `instance` are multi-value variables with "All". An exporter watches
  one account (single mode: one chart release each, the account label added by the scrape
  if at all) or several (config mode: the exporter labels each series with its account), so
  summing across the selected series is the total of those accounts; every panel either
  sums (counts, rates, ratios as sum over sum) or keeps one series per account and exporter
  (states, ages, rate-limit budgets, which must not add up).
- Both modes: "All" accounts is `.*`, which also matches series without the label, so a
  single-mode exporter scraped without one shows everything. Series of the process itself
  (`up`, `notte_exporter_build_info`) have no account in config mode and match any
  selection (`process_selector`).
- Firing Notte alerts (ALERTS) mark every time series panel.
"""

from __future__ import annotations

from mixin.config import Config
from mixin.dashboards.cost import cost_dashboard
from mixin.dashboards.exporter import exporter_dashboard
from mixin.dashboards.sessions import sessions_dashboard
from mixin.grafana import Json


def dashboards(config: Config) -> dict[str, Json]:
    """Every dashboard of the bundle by file name."""
    return {
        "notte-sessions.json": sessions_dashboard(config),
        "notte-exporter.json": exporter_dashboard(config),
        "notte-cost.json": cost_dashboard(config),
    }
