"""The "Notte sessions" dashboard: the fleet, who leaks, how sessions end, traffic, the reaper.

It also shows the plan limit and the oldest live sessions. The leak and error shares are
computed from the raw counter as the alerts' recording rules compute them, summed over the
selected exporters before dividing.

The "Who leaks" row splits the session counters by (account, key): in config mode the key is
the named API key that started each session (docs/metrics.md). Keys are per account, so
they are never pooled across accounts. In single mode there is no key: each account is one
series there, named "all keys", so the row still shows everything.
"""

from __future__ import annotations

from mixin.alert import KEY_LABEL
from mixin.config import Config, duration_seconds
from mixin.dashboards.common import (
    PER_MINUTE,
    RATE,
    bundle_dashboard,
    per_exporter,
    quantiles,
    selector,
)
from mixin.grafana import Json, Panel, Target, gauge, row, stat, table, timeseries

DRY_RUN_MAPPINGS: list[Json] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "LIVE", "color": "orange", "index": 0},
            "1": {"text": "DRY RUN", "color": "green", "index": 1},
        },
    }
]


def _ended_share(config: Config, sel: str, label: str, value: str) -> str:
    """Share of the sessions ended in the window whose `label` is `value`, among those whose
    `label` is known, summed over the selected exporters before dividing (what the
    alert's recording rule computes per exporter, from the raw counter)."""
    window = config.sessions_ended_window
    closed = "notte_sessions_closed_total"
    return (
        f'sum(increase({closed}{{{sel}, {label}="{value}"}}[{window}]))\n'
        f'/\nsum(increase({closed}{{{sel}, {label}!="unknown"}}[{window}]))'
    )


# The key of the series of single mode, which has no key label.
ALL_KEYS = "all keys"
DOLLARS = "currencyUSD"


def _by_key(expr: str) -> str:
    """`expr`, aggregated by (account, key) with `sum by`, with the key named in single mode."""
    return f'label_replace(\n{expr},\n"{KEY_LABEL}", "{ALL_KEYS}", "{KEY_LABEL}", ""\n)'


def _key_group(config: Config) -> str:
    return f"{config.account_label}, {KEY_LABEL}"


def _key_share(config: Config, part: str, whole: str) -> str:
    """Each key's `part` over its `whole` (two range selections); a key with a whole but no
    part shows 0 rather than nothing."""
    by = _key_group(config)
    return _by_key(
        f"(\n  sum by ({by}) (increase({part}))\n  or\n  0 * sum by ({by}) (increase({whole}))\n)\n"
        f"/\nsum by ({by}) (increase({whole}))",
    )


def _key_legend(config: Config) -> str:
    return f"{{{{{KEY_LABEL}}}}} {{{{{config.account_label}}}}}"


def sessions_dashboard(config: Config) -> Json:
    s = selector(config)
    window = config.sessions_ended_window
    live = f"sum(notte_sessions_active{{{s}}})"
    # One account of one exporter (config mode serves several accounts from one exporter).
    target = f"job, {config.instance_label}, {config.account_label}"
    # Only accounts whose plan limit is known count in the utilisation, on both sides.
    utilisation = (
        f"sum(sum by ({target}) (notte_sessions_active{{{s}}})\n"
        f"  and on ({target}) notte_sessions_limit{{{s}}} > 0)\n"
        f"/\nsum(notte_sessions_limit{{{s}}} > 0)"
    )
    leak_share = _ended_share(config, s, "close_reason", "idle_timeout")
    error_share = _ended_share(config, s, "status", "error")
    limit_steps = (
        (config.near_limit_warning_share, "orange"),
        (config.near_limit_critical_share, "red"),
    )
    panels: list[Panel] = [
        row("Overview"),
        stat("Live sessions", "Sessions live at the last successful poll.", Target(live)),
        gauge(
            "Plan utilisation",
            "Live sessions as a share of the plan limit (--sessions.limit), over the selected "
            "exporters that know their limit. Empty when none runs with --sessions.limit.",
            Target(utilisation),
            unit="percentunit",
            max_value=1,
            threshold_steps=limit_steps,
        ),
        stat(
            "Overdue sessions",
            "Live sessions past their max duration or idle timeout (plus grace): the platform "
            "failed to close them. Anything but 0 is billed waste.",
            Target(f"sum(notte_sessions_overdue{{{s}}})"),
            threshold_steps=((1, "red"),),
            width=3,
        ),
        stat(
            "Idle sessions",
            "Live sessions not accessed for longer than --sessions.idle-threshold.",
            Target(f"sum(notte_sessions_active_idle{{{s}}})"),
            threshold_steps=((config.idle_sessions, "orange"),),
            width=3,
        ),
        stat(
            "Oldest live session",
            "Age of the oldest live session.",
            Target(f"time() - min(notte_sessions_oldest_created_timestamp_seconds{{{s}}})"),
            unit="dtdurations",
            threshold_steps=((duration_seconds(config.long_running_after), "orange"),),
        ),
        stat(
            f"Leak share ({window})",
            f"Share of the sessions ended in the last {window} (with a known close reason) "
            "that the platform closed by idle timeout: clients did not stop them. "
            f"NotteSessionLeak alerts on the same share over the last {config.leak_window} "
            "(per exporter), so that a leak pages sooner; "
            "computed here from the raw counter, so it works without the bundle's rules.",
            Target(leak_share),
            unit="percentunit",
            threshold_steps=((config.leak_share, "red"),),
            width=3,
        ),
        stat(
            f"Error share ({window})",
            f"Share of the sessions ended in the last {window} (with a known status) "
            "whose final status is error. What NotteSessionErrorsHigh alerts on (per "
            "exporter); computed here from the raw counter.",
            Target(error_share),
            unit="percentunit",
            threshold_steps=((config.errors_share, "red"),),
            width=3,
        ),
        *_who_leaks_row(config, s),
        row("Live sessions"),
        timeseries(
            "Live sessions by browser type",
            "Sessions live at each poll, stacked by browser type.",
            [Target(f"sum by (browser_type) (notte_sessions_active{{{s}}})", "{{browser_type}}")],
            stack=True,
        ),
        timeseries(
            "Live sessions by feature",
            "Live sessions using proxies, captcha solving, file storage, web bot auth, or "
            "running headful. A session can use several features.",
            [
                Target(
                    f"sum by (feature) (notte_sessions_active_with_feature{{{s}}})", "{{feature}}"
                )
            ],
        ),
        timeseries(
            "Idle and overdue sessions",
            "Idle: live sessions not accessed for longer than --sessions.idle-threshold. "
            "Overdue: live past their max duration or idle timeout (plus grace).",
            [
                Target(
                    f"sum by (browser_type) (notte_sessions_active_idle{{{s}}})",
                    "idle {{browser_type}}",
                ),
                Target(f"sum by (reason) (notte_sessions_overdue{{{s}}})", "overdue: {{reason}}"),
            ],
        ),
        timeseries(
            "Live sessions with an error",
            "Live sessions whose error field is set, by browser type.",
            [
                Target(
                    f"sum by (browser_type) (notte_sessions_active_with_error{{{s}}})",
                    "{{browser_type}}",
                )
            ],
            stack=True,
        ),
        row("Lifecycle"),
        timeseries(
            "Session starts by browser type",
            "Sessions started per minute (while the exporter watched).",
            [
                Target(
                    f"sum by (browser_type) (rate(notte_sessions_started_total{{{s}}}[{RATE}]))"
                    " * 60",
                    "{{browser_type}}",
                )
            ],
            unit=PER_MINUTE,
            width=8,
            stack=True,
        ),
        timeseries(
            "Session ends by status",
            "Sessions ended per minute by final status. `unknown`: the exporter could not "
            "learn the end within its lookup budget.",
            [
                Target(
                    f"sum by (status) (rate(notte_sessions_closed_total{{{s}}}[{RATE}])) * 60",
                    "{{status}}",
                )
            ],
            unit=PER_MINUTE,
            width=8,
            stack=True,
        ),
        timeseries(
            "Session ends by close reason",
            "Sessions ended per minute by close reason. `idle_timeout` is the signature of "
            "a leak: the client never stopped the session.",
            [
                Target(
                    f"sum by (close_reason) (rate(notte_sessions_closed_total{{{s}}}[{RATE}]))"
                    " * 60",
                    "{{close_reason}}",
                )
            ],
            unit=PER_MINUTE,
            width=8,
            stack=True,
        ),
        timeseries(
            f"Leak and error shares ({window})",
            f"Of the sessions ended in the last {window}: the share closed by idle timeout "
            f"(leak; the alert reads the last {config.leak_window}: above "
            f"{config.leak_share:.0%}, with at least {config.leak_min_idle_timeouts} idle "
            f"timeouts) and the share ended in error (alert above {config.errors_share:.0%}, "
            "with a minimum number of ended sessions and errors). The dashed line is the leak "
            "threshold.",
            [Target(leak_share, "idle timeout (leak)"), Target(error_share, "error")],
            unit="percentunit",
            threshold_steps=((config.leak_share, "red"),),
        ),
        timeseries(
            "Session duration percentiles",
            "Lifetimes of the sessions that ended, from notte_session_duration_seconds.",
            quantiles("notte_session_duration_seconds_bucket", s),
            unit="s",
        ),
        row("Network"),
        timeseries(
            "Request bytes by browser type",
            "Bytes per second the sessions sent, by browser type.",
            [
                Target(
                    f"sum by (browser_type) "
                    f"(rate(notte_network_request_bytes_total{{{s}}}[{RATE}]))",
                    "{{browser_type}}",
                )
            ],
            unit="Bps",
            width=8,
            stack=True,
        ),
        timeseries(
            "Response bytes by browser type",
            "Bytes per second the sessions received, by browser type.",
            [
                Target(
                    f"sum by (browser_type) "
                    f"(rate(notte_network_response_bytes_total{{{s}}}[{RATE}]))",
                    "{{browser_type}}",
                )
            ],
            unit="Bps",
            width=8,
            stack=True,
        ),
        timeseries(
            "Bytes transferred by live sessions",
            "Sums of the byte totals of the sessions live at each poll.",
            [
                Target(f"sum(notte_sessions_active_network_request_bytes{{{s}}})", "request bytes"),
                Target(
                    f"sum(notte_sessions_active_network_response_bytes{{{s}}})", "response bytes"
                ),
            ],
            unit="bytes",
            width=8,
        ),
        row("Oldest live sessions"),
        _oldest_sessions_table(config, s),
        row("Plan limit"),
        timeseries(
            "Live sessions and plan limit",
            "Live sessions against --sessions.limit (empty without it), summed over the "
            "selected exporters.",
            [
                Target(live, "live"),
                Target(f"sum(notte_sessions_limit{{{s}}})", "limit"),
            ],
        ),
        timeseries(
            "Plan utilisation",
            "Live sessions as a share of the plan limit; NotteSessionsNearLimit warns at "
            f"{config.near_limit_warning_share:.0%} and is critical at "
            f"{config.near_limit_critical_share:.0%}.",
            [Target(utilisation, "utilisation")],
            unit="percentunit",
            threshold_steps=limit_steps,
        ),
        *_reaper_row(config, s),
    ]
    return bundle_dashboard(
        config,
        "sessions",
        "Notte sessions",
        "Live Notte cloud-browser sessions, how they end, leaks, traffic and the plan limit, "
        "from notte-exporter.",
        panels,
    )


def _who_leaks_row(config: Config, s: str) -> list[Panel]:
    """Leaks, idle waste, live sessions and browser dollars by (account, key)."""
    window = config.sessions_ended_window
    waste_window = config.idle_waste_window
    by = _key_group(config)
    closed = "notte_sessions_closed_total"
    idle_waste = f'notte_sessions_idle_seconds_total{{{s}, close_reason="idle_timeout"}}'
    browser = f"notte_sessions_browser_seconds_total{{{s}}}"
    legend = _key_legend(config)
    account = config.account_label
    # Each key's share of its account's browser seconds in the range, times the account's
    # browser cost this period (notte_usage_cost_dollars, as on the Notte cost dashboard).
    browser_dollars = _by_key(
        f"sum by ({by}) (increase({browser}[$__range]))\n"
        f"/ on ({account}) group_left\n"
        f"sum by ({account}) (increase({browser}[$__range]))\n"
        f"* on ({account}) group_left\n"
        f'sum by ({account}) (notte_usage_cost_dollars{{{s}, category="browser"}})',
    )
    return [
        row("Who leaks"),
        timeseries(
            f"Leak share by key ({window})",
            f"For each API key of each account: of its sessions ended in the last {window} "
            "(with a known close reason), the share the platform closed by idle timeout. "
            "NotteSessionLeak judges each key on its own ends, so a leaking key shows here "
            "however healthy the account's other keys are. Keys come from --config.file "
            f'(key "other": sessions no named key started; "{ALL_KEYS}": an exporter without '
            "--config.file). The dashed line is the alert's threshold.",
            [
                Target(
                    _key_share(
                        config,
                        f'{closed}{{{s}, close_reason="idle_timeout"}}[{window}]',
                        f'{closed}{{{s}, close_reason!="unknown"}}[{window}]',
                    ),
                    legend,
                )
            ],
            unit="percentunit",
            threshold_steps=((config.leak_share, "red"),),
            width=8,
        ),
        timeseries(
            f"Idle waste share by key ({waste_window})",
            f"For each API key of each account: of its sessions' browser seconds in the last "
            f"{waste_window}, the share that was idle time of sessions closed by idle timeout "
            "(billed, doing nothing). NotteIdleWasteHigh judges each key on its own browser "
            "time; the dashed line is its threshold.",
            [
                Target(
                    _key_share(
                        config, f"{idle_waste}[{waste_window}]", f"{browser}[{waste_window}]"
                    ),
                    legend,
                )
            ],
            unit="percentunit",
            threshold_steps=((config.idle_waste_share, "red"),),
            width=8,
        ),
        timeseries(
            "Live sessions by key",
            "Sessions live at each poll, by the API key that started them, stacked.",
            [Target(_by_key(f"sum by ({by}) (notte_sessions_active{{{s}}})"), legend)],
            stack=True,
            width=8,
        ),
        _key_table(
            config,
            "Top 10 keys by idle waste (selected range)",
            "The ten API keys whose sessions were billed the longest for doing nothing in the "
            "dashboard's time range: idle seconds (from last use to close) of their sessions "
            "closed by idle timeout. The key at the top is where to look first.",
            f"topk(10, {_by_key(f'sum by ({by}) (increase({idle_waste}[$__range]))')})",
            "Idle waste",
            "dtdurations",
        ),
        _key_table(
            config,
            "Browser dollars by key (estimate)",
            "An estimate, not a bill: each key's share of its account's browser seconds in the "
            "dashboard's time range, times the account's browser cost this period (GET /usage, "
            "as on the Notte cost dashboard). Set the range to the month so far for the "
            "period's split. Sessions the exporter did not see count for no key.",
            browser_dollars,
            "Browser dollars",
            DOLLARS,
        ),
    ]


def _key_table(
    config: Config, title: str, description: str, expr: str, value_name: str, unit: str
) -> Panel:
    """A table of one instant query by (account, key), largest value first."""
    transformations: list[Json] = [
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True},
                "indexByName": {config.account_label: 0, KEY_LABEL: 1, "Value": 2},
                "renameByName": {
                    config.account_label: "Account",
                    KEY_LABEL: "Key",
                    "Value": value_name,
                },
            },
        },
        {"id": "sortBy", "options": {"sort": [{"field": value_name, "desc": True}]}},
    ]
    overrides: list[Json] = [
        {
            "matcher": {"id": "byName", "options": value_name},
            "properties": [{"id": "unit", "value": unit}],
        }
    ]
    return table(
        title,
        description,
        [Target(expr, instant=True, table=True)],
        transformations=transformations,
        overrides=overrides,
        width=12,
        height=8,
    )


def _reaper_row(config: Config, s: str) -> list[Panel]:
    """The reaper's row (docs/reaper.md): empty for exporters run without one."""
    return [
        row("Reaper"),
        stat(
            "Reaper mode",
            "Each exporter's reaper: DRY RUN counts and logs the sessions it would stop and "
            "sends nothing; LIVE stops them. No value: no reaper (--reaper.config.file).",
            Target(f"notte_reaper_dry_run{{{s}}}", per_exporter(config)),
            mappings=DRY_RUN_MAPPINGS,
            base_color="orange",
            threshold_steps=((1, "green"),),
        ),
        timeseries(
            "Reaper stops by policy and result",
            "Sessions the reaper acted on per minute. stopped: DELETE /sessions/{id}/stop "
            "worked; dry_run: it would have stopped them; already_gone: 404 or already "
            "stopped; failed: tried again at the next poll (NotteReaperFailing).",
            [
                Target(
                    f"sum by (policy, result) (rate(notte_reaper_stops_total{{{s}}}[{RATE}])) * 60",
                    "{{policy}} {{result}}",
                )
            ],
            unit=PER_MINUTE,
            width=8,
            stack=True,
        ),
        timeseries(
            "Reaper candidates by policy",
            "Live sessions each policy matched at the last poll. A session is stopped once "
            "the same policy matched it at two polls in a row, within the policy file's "
            "limits; after a rollout this falls to near 0.",
            [
                Target(
                    f"sum by (policy) (notte_reaper_candidates{{{s}}})",
                    "{{policy}}",
                )
            ],
            width=8,
        ),
        stat(
            "Browser hours saved (selected range)",
            "Browser hours the reaper's stops saved in the dashboard's time range: for each "
            "stopped session, from the stop to when Notte would have closed it itself (its "
            "idle timeout or max duration). Dollars on the Notte cost dashboard.",
            Target(
                f"sum(increase(notte_reaper_saved_browser_seconds_total{{{s}}}[$__range])) / 3600"
            ),
            unit="h",
        ),
    ]


def _oldest_sessions_table(config: Config, s: str) -> Panel:
    # Four instant queries joined on their shared labels by the merge transformation: one
    # row per session (the exporter exposes the --sessions.detail-limit oldest ones).
    targets = [
        Target(f"notte_session_info{{{s}}}", instant=True, table=True),
        Target(
            f"time() - notte_session_created_timestamp_seconds{{{s}}}", instant=True, table=True
        ),
        Target(
            f"time() - notte_session_last_accessed_timestamp_seconds{{{s}}}",
            instant=True,
            table=True,
        ),
        Target(f"notte_session_created_timestamp_seconds{{{s}}} * 1000", instant=True, table=True),
    ]
    renames = {
        config.account_label: "Account",
        config.instance_label: "Exporter",
        "session_id": "Session",
        "browser_type": "Browser",
        "status": "Status",
        "Value #B": "Age",
        "Value #C": "Idle for",
        "Value #D": "Created",
    }
    transformations: list[Json] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {
                    "Time": True,
                    "__name__": True,
                    "Value #A": True,
                    "job": True,
                },
                "indexByName": {
                    "session_id": 0,
                    "browser_type": 1,
                    "status": 2,
                    "Value #B": 3,
                    "Value #C": 4,
                    "Value #D": 5,
                    config.account_label: 6,
                    config.instance_label: 7,
                },
                "renameByName": renames,
            },
        },
        {"id": "sortBy", "options": {"sort": [{"field": "Age", "desc": True}]}},
    ]
    overrides: list[Json] = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "unit", "value": unit}],
        }
        for name, unit in (
            ("Age", "dtdurations"),
            ("Idle for", "dtdurations"),
            ("Created", "dateTimeAsIso"),
        )
    ]
    return table(
        "Oldest live sessions",
        "The oldest live sessions (--sessions.detail-limit of them per exporter) with their "
        "age and how long since they were last used, and the account and exporter that "
        "report them. The session id is what to stop or investigate.",
        targets,
        transformations=transformations,
        overrides=overrides,
    )
