"""One alerting rule of the bundle, how it becomes a rule file entry, and how it names its target.

Its own module so that every group's module (mixin/rules/) builds alerts and their
descriptions the same way without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mixin.config import Config, duration_seconds


@dataclass(frozen=True)
class Alert:
    """One alerting rule; several rules may share an alert name (told apart by labels)."""

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)

    def rule(self, config: Config) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if not _is_zero_duration(self.for_):
            rule["for"] = self.for_
        rule["labels"] = {"severity": config.severity(self.name, self.severity), **self.labels}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": config.runbook_url(self.name),
        }
        return rule


def _is_zero_duration(text: str) -> bool:
    try:
        return duration_seconds(text) == 0
    except ValueError:  # a chart placeholder: the chart's value decides
        return False


def target_name(config: Config) -> str:
    """Template text naming the alert's exporter, and its account when the scrape labels it
    (one exporter per account: the chart's `account` value)."""
    return (
        f"{{{{ $labels.{config.instance_label} }}}}"
        f"{{{{ with $labels.{config.account_label} }}}} (account {{{{ . }}}}){{{{ end }}}}"
    )


def target_filter(config: Config) -> str:
    """Label matchers of the alert's own target, as a printf format for `query` templates."""
    return f"job=%q,{config.instance_label}=%q"


def query_value(config: Config, expr_format: str, pipeline: str = 'printf "%.0f"') -> str:
    """Template text printing one value queried for the alert's own target, or `?`.

    ``expr_format`` takes the target's job and instance (``%s``) and ``pipeline`` formats
    the value (a whole number by default).
    """
    inst = config.instance_label
    return (
        f"{{{{ with printf `{expr_format}` $labels.job $labels.{inst} | query }}}}"
        f"{{{{ . | first | value | {pipeline} }}}}{{{{ else }}}}?{{{{ end }}}}"
    )
