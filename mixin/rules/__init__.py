"""Prometheus recording and alerting rules of the bundle, built from a `Config`.

Aggregations use `without (<the metric's own labels>)` so that every target label
(job, instance, and namespace/pod under Kubernetes) survives into recorded series and alerts,
where Alertmanager can route on them.

Rules are grouped by subject, as in the kubernetes-mixin: one module per subject
(`exporter`, `sessions`, `cost`, `reaper`), one function per group, and `RECORDING_GROUPS` /
`ALERT_GROUPS` here list them in file order. A new subject adds a module and one line to
each list; recording groups come first because alerts read them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mixin.alert import Alert
from mixin.config import Config
from mixin.rules.cost import cost_alerts, cost_recording_rules
from mixin.rules.exporter import exporter_alerts
from mixin.rules.reaper import reaper_alerts
from mixin.rules.sessions import recording_rules, session_alerts

RuleFunction = Callable[[Config], list[dict[str, str]]]
AlertFunction = Callable[[Config], list[Alert]]

# Group names and the functions that build them, in file order.
RECORDING_GROUPS: tuple[tuple[str, RuleFunction], ...] = (
    ("notte-sessions.rules", recording_rules),
    ("notte-cost.rules", cost_recording_rules),
)
ALERT_GROUPS: tuple[tuple[str, AlertFunction], ...] = (
    ("notte-exporter", exporter_alerts),
    ("notte-sessions", session_alerts),
    ("notte-cost", cost_alerts),
    ("notte-reaper", reaper_alerts),
)


def alerts(config: Config) -> list[Alert]:
    """Every alert of every group, in file order."""
    return [alert for _, build in ALERT_GROUPS for alert in build(config)]


def rule_groups(config: Config) -> dict[str, Any]:
    """The rule file: recording groups first (alerts read them), then one group per subject."""
    return {
        "groups": [
            *({"name": name, "rules": build(config)} for name, build in RECORDING_GROUPS),
            *(
                {"name": name, "rules": [alert.rule(config) for alert in build(config)]}
                for name, build in ALERT_GROUPS
            ),
        ]
    }
