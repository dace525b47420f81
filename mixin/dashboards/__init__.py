"""Every Grafana dashboard of the bundle, by file name: one module each, built from `common`.

Invariants, so that the dashboards work however they are installed:
- Panels query the exporter's raw series, never the bundle's recording rules: a dashboard
  imported by hand into a Prometheus without the rules shows the same numbers.
- `job`, `account` and `instance` are multi-value variables with "All". One exporter watches
  one account (one chart release each), so summing across the selected exporters is the
  total of those accounts; every panel either sums (counts, rates, ratios as sum over sum)
  or keeps one series per exporter (states, ages, rate-limit budgets, which must not add up).
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
