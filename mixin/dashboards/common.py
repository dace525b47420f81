"""What every dashboard of the bundle shares: selector, legends, units and the frame.

Each dashboard module builds its panels from these and wraps them in `bundle_dashboard`
(uid, tags, variables, refresh, range, alert annotations), so that the invariants of
mixin/dashboards/__init__.py hold for every dashboard alike.
"""

from __future__ import annotations

from mixin.config import Config
from mixin.grafana import (
    Json,
    Panel,
    Target,
    alert_annotation,
    dashboard,
    datasource_variable,
    query_variable,
)

RATE = "$__rate_interval"
PER_MINUTE = "suffix: /min"
UP_MAPPINGS: list[Json] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "DOWN", "color": "red", "index": 0},
            "1": {"text": "UP", "color": "green", "index": 1},
        },
    }
]


def selector(config: Config) -> str:
    """Label matchers of the job, account and instance variables, for every panel query."""
    return (
        f'job=~"$job", {config.account_label}=~"$account", '
        f'{config.instance_label}=~"${config.instance_label}"'
    )


def process_selector(config: Config) -> str:
    """`selector` for the series of the process rather than of an account: `up` and
    `notte_exporter_build_info`. In config mode they carry no account (one process serves
    several), so they also match an empty account and stay in view whichever is selected."""
    return (
        f'job=~"$job", {config.account_label}=~"$account|", '
        f'{config.instance_label}=~"${config.instance_label}"'
    )


def per_exporter(config: Config, what: str = "") -> str:
    """Legend of a series kept per exporter: its account (when labelled) and instance."""
    return f"{what}{{{{{config.account_label}}}}} {{{{{config.instance_label}}}}}".strip()


def _variables(config: Config) -> list[Json]:
    inst, account = config.instance_label, config.account_label
    return [
        datasource_variable(),
        query_variable("job", "Job", "label_values(notte_exporter_build_info, job)", multi=True),
        # Accounts from notte_up, which has one series per account in both modes: in config
        # mode the exporter labels it, in single mode the scrape may (the chart's `account`).
        # "All" is any value or none: in single mode without an account label the list is
        # empty and every query still matches everything.
        query_variable(
            "account",
            "Account",
            f'label_values(notte_up{{job=~"$job"}}, {account})',
            multi=True,
            all_value=".*",
        ),
        query_variable(
            inst,
            "Instance",
            f'label_values(notte_up{{job=~"$job", {account}=~"$account"}}, {inst})',
            multi=True,
        ),
    ]


def _annotations(config: Config) -> list[Json]:
    # `|` also matches an empty label: absent()-based alerts have no instance, and
    # exporters scraped without an account label have no account.
    return [
        alert_annotation(
            "Notte alerts",
            'ALERTS{alertname=~"Notte.+", alertstate="firing", job=~"$job", '
            f'{config.account_label}=~"$account|", '
            f'{config.instance_label}=~"${config.instance_label}|"}}',
            # The target's labels, under whatever names this bundle gives them.
            f"{{{{severity}}}}: {{{{{config.instance_label}}}}} {{{{{config.account_label}}}}}",
        )
    ]


def quantiles(metric: str, sel: str, by: str = "", legend_suffix: str = "") -> list[Target]:
    """p50, p90 and p99 of a histogram's buckets, pooled over the selected exporters."""
    group = f"{by}, le" if by else "le"
    return [
        Target(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}{{{sel}}}[{RATE}])))",
            f"p{round(q * 100)}{legend_suffix}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def bundle_dashboard(
    config: Config, slug: str, title: str, description: str, panels: list[Panel]
) -> Json:
    """A dashboard of the bundle: its uid, tags, variables, refresh, range and annotations
    come from the config, the same for every dashboard."""
    return dashboard(
        uid=f"{config.dashboard_uid_prefix}-{slug}",
        title=title,
        description=description,
        tags=list(config.dashboard_tags),
        variables=_variables(config),
        panels=panels,
        refresh=config.dashboard_refresh,
        time_from=config.dashboard_time_from,
        annotations=_annotations(config),
    )
