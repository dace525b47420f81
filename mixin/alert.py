"""One alerting rule of the bundle, how it becomes a rule file entry, and how it names its target.

Its own module so that every group's module (mixin/rules/) builds alerts and their
descriptions the same way without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mixin.config import Config, duration_seconds

# The label the exporter puts on session series in config mode (--config.file): the named
# API key whose listing holds the session, or OTHER_KEY when none claims it. Single mode has
# no such label, and every rule and template reading it must work without it.
KEY_LABEL = "key"
OTHER_KEY = "other"


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


def key_name(lead: str = "") -> str:
    """Template text naming the API key an alert is about (`<lead>started with key <name> `),
    or nothing when the alert has no key label (single mode, or an alert about a whole
    account). Sessions no named key claims are said to have none rather than called `other`.
    """
    return (
        f"{{{{ with $labels.{KEY_LABEL} }}}}"
        f'{{{{ if eq . "{OTHER_KEY}" }}}}{lead}started with no named key '
        f"{{{{ else }}}}{lead}started with key {{{{ . }}}} {{{{ end }}}}{{{{ end }}}}"
    )


def target_filter(config: Config) -> str:
    """Label matchers of the alert's own target, as a printf format for `query` templates.

    The account is part of the target: in config mode one exporter serves several accounts
    under one job and instance. An alert without the label asks for `account=""`, which
    matches exactly the series without it.
    """
    return f"job=%q,{config.instance_label}=%q,{config.account_label}=%q"


def target_args(config: Config) -> str:
    """The template arguments `target_filter`'s format takes, in its order."""
    return f"$labels.job $labels.{config.instance_label} $labels.{config.account_label}"


def key_filter() -> str:
    """A matcher of the alert's own key, as a printf format taking `key_arg()`: the key
    itself, or any key (and none) when the alert has no key label."""
    return f"{KEY_LABEL}=~%q"


def key_arg() -> str:
    """The template argument of `key_filter`: a key name is a literal regex ([a-z0-9-]+)."""
    return f'(or $labels.{KEY_LABEL} ".*")'


def query_value(
    config: Config, expr_format: str, pipeline: str = 'printf "%.0f"', extra_args: str = ""
) -> str:
    """Template text printing one value queried for the alert's own target, or `?`.

    ``expr_format`` takes the target's job, instance and account (``%q``, see
    `target_filter`), then ``extra_args``; ``pipeline`` formats the value (a whole number by
    default).
    """
    args = " ".join(a for a in (target_args(config), extra_args) if a)
    return (
        f"{{{{ with printf `{expr_format}` {args} | query }}}}"
        f"{{{{ . | first | value | {pipeline} }}}}{{{{ else }}}}?{{{{ end }}}}"
    )


def per_key_or_account(key_condition: str, account_condition: str) -> str:
    """An alert condition judged per key, and per account where no key of it qualifies.

    Each key is held to the thresholds on its own numbers, so a leaking key fires however
    healthy the account's other keys are. Keys can also split an account's volume so that
    none reaches the minimum alone while the account as a whole is over the threshold (five
    keys each leaking a few sessions): then the account fires without a key, as the same
    rule fired before keys existed. In single mode there is no key label, both conditions
    are the same series and the `unless` removes the second: today's alert exactly.
    """
    return (
        f"(\n{_indent(key_condition)})\nor\n(\n{_indent(account_condition)}"
        f"  unless ignoring ({KEY_LABEL})\n  (\n{_indent(key_condition, 4)}  )\n)\n"
    )


def _indent(text: str, spaces: int = 2) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.strip("\n").split("\n"))
