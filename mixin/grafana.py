"""Small builders for Grafana dashboard JSON (plain dicts, schema version 39).

Every panel and target points at the `${datasource}` template variable, never at a data
source UID, so that the dashboards import into any Grafana whatever its data sources are
called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 39
GRID_WIDTH = 24
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

Json = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str = "__auto"
    instant: bool = False
    table: bool = False

    def json(self, ref_id: str) -> Json:
        target: Json = {
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": self.expr,
            "legendFormat": self.legend,
            "range": not self.instant,
            "instant": self.instant,
            "refId": ref_id,
        }
        if self.table:
            target["format"] = "table"
        return target


@dataclass
class Panel:
    """A panel before layout: its JSON without id and position, and its size."""

    body: Json
    width: int
    height: int
    targets: list[Target] = field(default_factory=list)


def thresholds(*steps: tuple[float, str], base: str = "green") -> Json:
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def _field_config(
    unit: str, min_value: float | None, steps: tuple[tuple[float, str], ...], custom: Json
) -> Json:
    defaults: Json = {"color": {"mode": "palette-classic"}, "unit": unit, "custom": custom}
    if min_value is not None:
        defaults["min"] = min_value
    defaults["thresholds"] = thresholds(*steps)
    return {"defaults": defaults, "overrides": []}


def timeseries(
    title: str,
    description: str,
    targets: list[Target],
    *,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    min_value: float | None = 0,
    threshold_steps: tuple[tuple[float, str], ...] = (),
) -> Panel:
    custom: Json = {
        "drawStyle": "line",
        "fillOpacity": 20 if stack else 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
        # A dashed line at each threshold shows how close the series is to alerting.
        "thresholdsStyle": {"mode": "dashed" if threshold_steps else "off"},
    }
    body: Json = {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": _field_config(unit, min_value, threshold_steps, custom),
        "options": {
            "legend": {
                "calcs": ["lastNotNull", "max"],
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }
    return Panel(body, width, height, targets)


def stat(
    title: str,
    description: str,
    target: Target,
    *,
    unit: str = "short",
    width: int = 4,
    height: int = 4,
    threshold_steps: tuple[tuple[float, str], ...] = (),
    mappings: list[Json] | None = None,
    text_mode: str = "auto",
    base_color: str = "green",
) -> Panel:
    field_config = _field_config(unit, None, threshold_steps, {})
    field_config["defaults"]["color"] = {"mode": "thresholds"}
    field_config["defaults"]["thresholds"] = thresholds(*threshold_steps, base=base_color)
    field_config["defaults"]["mappings"] = mappings or []
    body: Json = {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": field_config,
        "options": {
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": text_mode,
        },
    }
    return Panel(body, width, height, [Target(target.expr, target.legend, instant=True)])


def gauge(
    title: str,
    description: str,
    target: Target,
    *,
    unit: str,
    max_value: float,
    threshold_steps: tuple[tuple[float, str], ...],
    width: int = 4,
    height: int = 4,
) -> Panel:
    field_config = _field_config(unit, 0, threshold_steps, {})
    field_config["defaults"]["color"] = {"mode": "thresholds"}
    field_config["defaults"]["max"] = max_value
    body: Json = {
        "type": "gauge",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": field_config,
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showThresholdMarkers": True,
        },
    }
    return Panel(body, width, height, [Target(target.expr, target.legend, instant=True)])


def table(
    title: str,
    description: str,
    targets: list[Target],
    *,
    transformations: list[Json],
    overrides: list[Json],
    width: int = GRID_WIDTH,
    height: int = 10,
) -> Panel:
    body: Json = {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {"custom": {"align": "auto", "filterable": True}},
            "overrides": overrides,
        },
        "options": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
        "transformations": transformations,
    }
    return Panel(body, width, height, targets)


def row(title: str) -> Panel:
    body: Json = {"type": "row", "title": title, "collapsed": False, "panels": []}
    return Panel(body, GRID_WIDTH, 1)


def layout(panels: list[Panel]) -> list[Json]:
    """Place panels left to right, wrapping lines; rows start a new line."""
    placed: list[Json] = []
    x = y = line_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        if panel.body["type"] == "row" or x + panel.width > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        body = dict(panel.body)
        body["id"] = panel_id
        body["gridPos"] = {"h": panel.height, "w": panel.width, "x": x, "y": y}
        if panel.targets:
            body["targets"] = [
                target.json(chr(ord("A") + index)) for index, target in enumerate(panel.targets)
            ]
        placed.append(body)
        x += panel.width
        line_height = max(line_height, panel.height)
    return placed


def datasource_variable() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
    }


def query_variable(
    name: str, label: str, query: str, *, multi: bool = False, all_value: str | None = None
) -> Json:
    """A variable filled from a query. `multi` adds several selections and "All"; without
    `all_value`, "All" means every value the query found (a regex of them), so a broad
    regex never reaches other jobs' series."""
    variable: Json = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
        "hide": 0,
        "includeAll": multi,
        "multi": multi,
        "options": [],
        "refresh": 2,
        "regex": "",
        "sort": 1,
    }
    if all_value is not None:
        variable["allValue"] = all_value
    return variable


def alert_annotation(name: str, expr: str, text: str) -> Json:
    """Marks on every time series panel where a Prometheus alert was firing (from ALERTS).

    ``text`` is the mark's text, a Grafana template of the alert's labels.
    """
    return {
        "datasource": DATASOURCE,
        "enable": True,
        "expr": expr,
        "iconColor": "red",
        "name": name,
        "step": "1m",
        "titleFormat": "{{alertname}}",
        "textFormat": text,
        "useValueForTime": False,
    }


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    tags: list[str],
    variables: list[Json],
    panels: list[Panel],
    refresh: str,
    time_from: str,
    annotations: list[Json] | None = None,
) -> Json:
    return {
        "annotations": {"list": annotations or []},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": tags[:1],
                "targetBlank": False,
                "title": "Notte dashboards",
                "type": "dashboards",
            }
        ],
        "panels": layout(panels),
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "tags": tags,
        "templating": {"list": variables},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }
