"""The "Notte sessions" dashboard: the fleet, how sessions end, leaks, traffic, the reaper.

It also shows the plan limit and the oldest live sessions. The leak and error shares are
computed from the raw counter as the alerts' recording rules compute them, summed over the
selected exporters before dividing.
"""

from __future__ import annotations

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


def sessions_dashboard(config: Config) -> Json:
    s = selector(config)
    window = config.sessions_ended_window
    live = f"sum(notte_sessions_active{{{s}}})"
    target = f"job, {config.instance_label}"
    # Only exporters that know their plan limit count in the utilisation, on both sides.
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
