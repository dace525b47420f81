"""The session rule groups: how sessions end (`notte-sessions.rules`) and their alerts.

`notte-sessions` alerts on leaks, errors and the sessions live on the account. The recorded
shares count only the sessions whose end is known (`known_ended`): those the exporter could
not look up within its budget end as `unknown` and say nothing about leaks or errors.

Both modes of the exporter (docs/metrics.md): in config mode every series carries `account`
and the session counters `key`. The `instance` records drop `key` and keep `account`
(`without`), so they are one series per account in config mode and today's series in single
mode. The `instance_key` records keep `key` too, the hourly leak share of each key that the
runbook reads. In single mode the two kinds of record are the same series.

The leak alert reads the ends of its own, shorter window (`leak_window`), in its expression
rather than through the recorded hourly share, so that the window can be a chart value: an
hour's healthy ends dilute a leak's first idle timeouts and delay the page by half an hour.
It judges each key on its own ends for the same reason, so that one key's leak is not
diluted by the other keys' healthy ends (`per_key_or_account`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mixin.alert import (
    KEY_LABEL,
    Alert,
    key_arg,
    key_filter,
    key_name,
    per_key_or_account,
    query_value,
    target_filter,
    target_name,
)
from mixin.config import Config, human_duration


@dataclass(frozen=True)
class RecordNames:
    """Names of the recording rules, shared by alerts and dashboards."""

    active: str
    closed_by_reason: str
    closed_by_status: str
    idle_timeout_ratio: str
    error_ratio: str
    key_closed_by_reason: str
    key_idle_timeout_ratio: str


def record_names(config: Config) -> RecordNames:
    window = config.sessions_ended_window
    return RecordNames(
        active="instance:notte_sessions_active:sum",
        closed_by_reason=f"instance_close_reason:notte_sessions_closed:increase{window}",
        closed_by_status=f"instance_status:notte_sessions_closed:increase{window}",
        idle_timeout_ratio=f"instance:notte_sessions_closed_idle_timeout:ratio{window}",
        error_ratio=f"instance:notte_sessions_closed_error:ratio{window}",
        key_closed_by_reason=f"instance_key_close_reason:notte_sessions_closed:increase{window}",
        key_idle_timeout_ratio=f"instance_key:notte_sessions_closed_idle_timeout:ratio{window}",
    )


def known_ended(config: Config, by: str, *, per_key: bool = False) -> str:
    """Sessions ended in the window whose `by` label (close_reason or status) is known.

    Sessions whose end the exporter could not learn within its lookup budget are `unknown`
    in both labels; they say nothing about leaks or errors, so they stay out of the shares.
    `per_key` counts them per key (close_reason only).
    """
    names = record_names(config)
    if per_key:
        record = names.key_closed_by_reason
    else:
        record = names.closed_by_reason if by == "close_reason" else names.closed_by_status
    return f'sum without ({by}) ({record}{{{by}!="unknown"}})'


def _idle_timeout_ratio(record: str, known: str) -> str:
    # 0/0 (nothing ended) gives NaN, which no comparison matches: no alert, a gap on the
    # dashboard.
    return f'sum without (close_reason) ({record}{{close_reason="idle_timeout"}})\n/\n{known}\n'


def recording_rules(config: Config) -> list[dict[str, str]]:
    names = record_names(config)
    window = config.sessions_ended_window
    closed = config.metric("notte_sessions_closed_total")
    return [
        {
            # Per account: the plan limit it is compared with has no key.
            "record": names.active,
            "expr": (
                f"sum without (browser_type, {KEY_LABEL}) "
                f"({config.metric('notte_sessions_active')})"
            ),
        },
        {
            "record": names.closed_by_reason,
            "expr": (
                f"sum without (browser_type, status, {KEY_LABEL}) (increase({closed}[{window}]))"
            ),
        },
        {
            "record": names.closed_by_status,
            "expr": (
                f"sum without (browser_type, close_reason, {KEY_LABEL}) "
                f"(increase({closed}[{window}]))"
            ),
        },
        {
            "record": names.idle_timeout_ratio,
            "expr": _idle_timeout_ratio(
                names.closed_by_reason, known_ended(config, "close_reason")
            ),
        },
        {
            "record": names.key_closed_by_reason,
            "expr": f"sum without (browser_type, status) (increase({closed}[{window}]))",
        },
        {
            "record": names.key_idle_timeout_ratio,
            "expr": _idle_timeout_ratio(
                names.key_closed_by_reason, known_ended(config, "close_reason", per_key=True)
            ),
        },
        {
            "record": names.error_ratio,
            "expr": (
                f'sum without (status) ({names.closed_by_status}{{status="error"}})\n'
                f"/\n{known_ended(config, 'status')}\n"
            ),
        },
    ]


def session_alerts(config: Config) -> list[Alert]:
    """Group `notte-sessions`: leaks, errors and the sessions live on the account."""
    c = config
    inst = target_name(c)
    names = record_names(c)
    ended_window = human_duration(c.sessions_ended_window)
    target = target_filter(c)
    result: list[Alert] = []
    leak_window = c.value("leak_window")

    def leak_ended(matcher: str, *, per_key: bool) -> str:
        closed = c.metric("notte_sessions_closed_total", matcher)
        dropped = "browser_type, status, close_reason" + ("" if per_key else f", {KEY_LABEL}")
        return f"sum without ({dropped}) (increase({closed}[{leak_window}]))"

    def leak_condition(*, per_key: bool) -> str:
        idle_timeouts = leak_ended('close_reason="idle_timeout"', per_key=per_key)
        known = leak_ended('close_reason!="unknown"', per_key=per_key)
        return (
            f"{idle_timeouts}\n/\n{known}\n"
            f"> {c.value('leak_share', 'number')}\n"
            f"and\n{idle_timeouts} >= {c.value('leak_min_idle_timeouts', 'int')}\n"
        )

    # The key's own ends, or all of the account's when the alert names no key.
    known_here = f'notte_sessions_closed_total{{close_reason!="unknown",{target},{key_filter()}}}'
    leak_volume = query_value(
        c, f"sum(increase({known_here}[{leak_window}]))", extra_args=key_arg()
    )
    result.append(
        Alert(
            name="NotteSessionLeak",
            expr=per_key_or_account(leak_condition(per_key=True), leak_condition(per_key=False)),
            for_=c.value("leak_for"),
            severity="critical",
            summary="Notte sessions are leaking: clients do not stop them.",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the {leak_volume} sessions "
                f"{key_name()}that "
                f"ended on {inst} in the last {c.value('leak_window', 'human')} were closed "
                f"by the platform's idle timeout (threshold {c.value('leak_share', 'percent')}"
                f", and at least {c.value('leak_min_idle_timeouts', 'int')} such sessions): "
                "clients start sessions and never stop them, and every leaked session is "
                "billed until it times out."
            ),
        )
    )
    error_volume = query_value(
        c,
        f'sum({names.closed_by_status}{{status!="unknown",{target}}})',
    )
    result.append(
        Alert(
            name="NotteSessionErrorsHigh",
            expr=(
                f"{names.error_ratio} > {c.value('errors_share', 'number')}\n"
                f"and\n{known_ended(c, 'status')}"
                f" >= {c.value('errors_min_ended_sessions', 'int')}\n"
                f'and\nsum without (status) ({names.closed_by_status}{{status="error"}})'
                f" >= {c.value('errors_min_errors', 'int')}\n"
            ),
            for_=c.value("errors_for"),
            severity="warning",
            summary="Many Notte sessions end in error.",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the {error_volume} sessions that "
                f"ended on {inst} in the last {ended_window} ended with status error "
                f"(threshold {c.value('errors_share', 'percent')} of at least "
                f"{c.value('errors_min_ended_sessions', 'int')}, and at least "
                f"{c.value('errors_min_errors', 'int')} errors)."
            ),
        )
    )
    result.append(
        Alert(
            name="NotteSessionsOverdue",
            expr=f"{c.metric('notte_sessions_overdue')} > 0",
            for_=c.value("overdue_for"),
            severity="warning",
            summary="Notte sessions outlive their own limits.",
            description=(
                f"{{{{ $value }}}} live session(s) on {inst} are still running past their "
                '{{ if eq $labels.reason "max_duration" }}maximum duration'
                "{{ else }}idle timeout{{ end }} (plus the exporter's grace) for more than "
                f"{c.value('overdue_for', 'human')}: the platform did not close them, and they "
                "are billed. The oldest sessions are listed on the Notte sessions dashboard."
            ),
        )
    )
    live = query_value(c, f"sum({names.active}{{{target}}})")
    result.append(
        Alert(
            name="NotteSessionsIdle",
            expr=(
                f"sum without (browser_type) ({c.metric('notte_sessions_active_idle')})"
                f" >= {c.value('idle_sessions', 'int')}"
            ),
            for_=c.value("idle_for"),
            severity="warning",
            summary="Many Notte sessions are held idle.",
            description=(
                f"{{{{ $value }}}} of the {live} live sessions on {inst} have not been used "
                "for longer than the exporter's --sessions.idle-threshold, for more than "
                f"{c.value('idle_for', 'human')} (threshold "
                f"{c.value('idle_sessions', 'int')} sessions): capacity is held and billed while "
                "doing nothing."
            ),
        )
    )
    after = c.value("long_running_after", "seconds")
    created = c.metric("notte_session_created_timestamp_seconds")
    result.append(
        Alert(
            name="NotteSessionsLongRunning",
            # One alert per session, named by the detail series of the N oldest sessions.
            # topk keeps one info series per session so that a session seen with two
            # statuses cannot make the one-to-one join fail; the `or` branch still fires
            # (unnamed) when --sessions.detail-limit=0 turns the detail series off.
            expr=(
                f"(time() - {created} > {after})\n"
                "* ignoring (browser_type, status) group_left (browser_type, status)\n"
                "topk without (browser_type, status) "
                f"(1, {c.metric('notte_session_info')})\n"
                "or\n(\n"
                f"  time() - {c.metric('notte_sessions_oldest_created_timestamp_seconds')}"
                f" > {after}\n"
                f"  unless ignoring (session_id)\n  {created}\n)\n"
            ),
            for_=c.value("long_running_for"),
            severity="info",
            summary="A Notte session has been running for a long time.",
            description=(
                "{{ with $labels.session_id }}Session {{ . }} ({{ $labels.browser_type }}, "
                f"status {{{{ $labels.status }}}}) on {inst} has been live"
                f"{{{{ else }}}}The oldest live session on {inst} has been live{{{{ end }}}} "
                "for {{ $value | humanizeDuration }}, longer than "
                f"{c.value('long_running_after', 'human')}."
            ),
        )
    )
    limit = query_value(c, f"sum(notte_sessions_limit{{{target}}})")
    for severity, share in (
        ("warning", "near_limit_warning_share"),
        ("critical", "near_limit_critical_share"),
    ):
        result.append(
            Alert(
                name="NotteSessionsNearLimit",
                expr=(
                    f"{names.active}\n/\n({c.metric('notte_sessions_limit')} > 0)\n"
                    f">= {c.value(share, 'number')}\n"
                ),
                for_=c.value("near_limit_for"),
                severity=severity,
                summary="Live Notte sessions approach the plan limit.",
                description=(
                    f"{live} live sessions on {inst} use {{{{ $value | humanizePercentage }}}} "
                    f"of the plan limit of {limit} sessions (threshold "
                    f"{c.value(share, 'percent')}): new sessions will be refused once the limit "
                    "is reached."
                ),
            )
        )
    return result
