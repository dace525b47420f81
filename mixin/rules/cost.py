"""The cost rule groups: burn rate, idle waste and the alerts before the credits run out.

`notte-cost.rules` records the burn rate and the idle-waste share; `notte-cost` holds the
alerts (both listed in `RECORDING_GROUPS` / `ALERT_GROUPS` of mixin/rules/__init__.py).

The usage gauges (`notte_usage_*`) are month-to-date values as `GET /usage` reports them:
when the month rolls over they drop to near 0. A burn rate taken as `rate()` would read the
drop as a counter reset (right at the rollover, but a one-cent correction of the bill
would then count as a month's spend); `delta()` would go hugely negative. The burn rate is
the least-squares slope (`deriv`) clamped at 0: a window that holds the rollover reads 0 for
at most its own length, never a negative or inflated rate, and small corrections barely
move it.

"Before the period ends" is the end of the calendar month in UTC, computed in PromQL from
`days_in_month()`, `day_of_month()` and the time of day, so the forecast needs no recording
of the period.

Idle waste is recorded per account (`instance` records, without `key`) and per key
(`instance_key` records): NotteIdleWasteHigh judges each key's share of its own browser time,
and the account's where no single key qualifies (`per_key_or_account`).
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

# Seconds from now to the end of the current calendar month (UTC); a label-less scalar.
SECONDS_TO_MONTH_END = "scalar((days_in_month() - day_of_month() + 1) * 86400 - time() % 86400)"


@dataclass(frozen=True)
class CostRecordNames:
    """Names of the cost recording rules, shared by alerts, dashboards and the runbook."""

    burn_rate: str
    browser_seconds: str
    idle_waste_seconds: str
    idle_waste_ratio: str
    key_browser_seconds: str
    key_idle_waste_seconds: str
    key_idle_waste_ratio: str


def cost_record_names(config: Config) -> CostRecordNames:
    rate_window = config.spend_rate_window
    waste_window = config.idle_waste_window
    return CostRecordNames(
        burn_rate=f"instance:notte_usage_cost_dollars_per_hour:deriv{rate_window}",
        browser_seconds=f"instance:notte_sessions_browser_seconds:increase{waste_window}",
        idle_waste_seconds=f"instance:notte_sessions_idle_waste_seconds:increase{waste_window}",
        idle_waste_ratio=f"instance:notte_sessions_idle_waste:ratio{waste_window}",
        key_browser_seconds=f"instance_key:notte_sessions_browser_seconds:increase{waste_window}",
        key_idle_waste_seconds=(
            f"instance_key:notte_sessions_idle_waste_seconds:increase{waste_window}"
        ),
        key_idle_waste_ratio=f"instance_key:notte_sessions_idle_waste:ratio{waste_window}",
    )


def burn_rate_expr(config: Config, series: str) -> str:
    """Dollars per hour spent on `series` (a month-to-date cost gauge), never below 0."""
    return f"clamp_min(deriv({series}[{config.spend_rate_window}]), 0) * 3600"


def idle_waste_selector(config: Config) -> str:
    """The idle time of sessions closed by idle timeout: what leaked sessions were billed."""
    return config.metric("notte_sessions_idle_seconds_total", 'close_reason="idle_timeout"')


def cost_recording_rules(config: Config) -> list[dict[str, str]]:
    names = cost_record_names(config)
    window = config.idle_waste_window
    browser = config.metric("notte_sessions_browser_seconds_total")
    return [
        {
            "record": names.burn_rate,
            "expr": burn_rate_expr(config, config.metric("notte_usage_total_cost_dollars")),
        },
        {
            "record": names.browser_seconds,
            "expr": f"sum without (browser_type, {KEY_LABEL}) (increase({browser}[{window}]))",
        },
        {
            "record": names.idle_waste_seconds,
            "expr": (
                f"sum without (browser_type, close_reason, {KEY_LABEL}) "
                f"(increase({idle_waste_selector(config)}[{window}]))"
            ),
        },
        {
            "record": names.idle_waste_ratio,
            # No browser time in the window gives 0/0 = NaN, which no comparison matches.
            "expr": f"{names.idle_waste_seconds}\n/\n{names.browser_seconds}\n",
        },
        {
            "record": names.key_browser_seconds,
            "expr": f"sum without (browser_type) (increase({browser}[{window}]))",
        },
        {
            "record": names.key_idle_waste_seconds,
            "expr": (
                "sum without (browser_type, close_reason) "
                f"(increase({idle_waste_selector(config)}[{window}]))"
            ),
        },
        {
            "record": names.key_idle_waste_ratio,
            "expr": f"{names.key_idle_waste_seconds}\n/\n{names.key_browser_seconds}\n",
        },
    ]


def _dollars(config: Config, expr_format: str) -> str:
    return "$" + query_value(config, expr_format, 'printf "%.2f"')


def cost_alerts(config: Config) -> list[Alert]:
    c = config
    inst = target_name(c)
    target = target_filter(c)
    names = cost_record_names(c)
    limit_sum = f"sum without (source) ({c.metric('notte_usage_limit_dollars')})"
    limit = _dollars(c, f"sum(notte_usage_limit_dollars{{{target}}})")
    spent = _dollars(c, f"sum(notte_usage_total_cost_dollars{{{target}}})")
    balance = _dollars(c, f"sum(notte_usage_total_balance_dollars{{{target}}})")
    burn = _dollars(c, f"sum({names.burn_rate}{{{target}}})")
    rate_window = human_duration(c.spend_rate_window)
    waste_window = human_duration(c.idle_waste_window)
    result = [
        Alert(
            name="NotteUsageLimitExceeded",
            expr=f"{c.metric('notte_usage_limit_exceeded')} == 1",
            for_=c.value("usage_limit_exceeded_for"),
            severity="critical",
            summary="The Notte account's usage limit is exceeded.",
            description=(
                f"Notte reports the usage limit of {inst} exceeded: {spent} spent this period "
                f"against {limit} of credits. Unless a card is on file, new sessions are refused "
                "with HTTP 402 until the period resets on the 1st of the month."
            ),
        )
    ]
    for severity, share in (
        ("warning", "credits_low_warning_share"),
        ("critical", "credits_low_critical_share"),
    ):
        result.append(
            Alert(
                name="NotteCreditsLow",
                expr=(
                    f"{c.metric('notte_usage_total_balance_dollars')}\n/\n({limit_sum} > 0)\n"
                    f"< {c.value(share, 'number')}\n"
                ),
                for_=c.value("credits_low_for"),
                severity=severity,
                summary="The Notte account's credits run low.",
                description=(
                    f"Only {{{{ $value | humanizePercentage }}}} of the credits of {inst} are "
                    f"left: {balance} of {limit} (threshold {c.value(share, 'percent')}), at a "
                    f"burn rate of {burn} an hour over the last {rate_window}. Once they are "
                    "used up and no card is on file, new sessions are refused with HTTP 402."
                ),
            )
        )
    forecast = (
        f"{c.metric('notte_usage_total_cost_dollars')}\n"
        f"+ {names.burn_rate} * {SECONDS_TO_MONTH_END} / 3600\n"
    )
    # The same target twice: Go's printf takes the arguments by index.
    indexed = f"job=%[1]q,{c.instance_label}=%[2]q,{c.account_label}=%[3]q"
    runs_out = query_value(
        c,
        f"sum(notte_usage_total_balance_dollars{{{indexed}}}) / "
        f"sum({names.burn_rate}{{{indexed}}}) * 3600",
        "humanizeDuration",
    )
    result.append(
        Alert(
            name="NotteSpendForecastOverLimit",
            # Once the limit is exceeded NotteUsageLimitExceeded says more; this one is the
            # warning ahead of it.
            expr=(
                f"(\n{forecast})\n> ({limit_sum} > 0)\n"
                f"unless\n{c.metric('notte_usage_limit_exceeded')} == 1\n"
            ),
            for_=c.value("spend_forecast_for"),
            severity="warning",
            summary="At the current rate, Notte spend passes the limit before the month ends.",
            description=(
                f"At the burn rate of the last {rate_window} ({burn} an hour), spend on {inst} "
                'would reach ${{ $value | printf "%.2f" }} by the end of the month, over '
                f"the limit of {limit}: the {balance} left run out in about {runs_out}. "
                "Then new sessions are refused with HTTP 402 unless a card is on file."
            ),
        )
    )
    # The key's own hours, or all of the account's when the alert names no key.
    key_target = f"{target},{key_filter()}"
    waste_hours = query_value(
        c,
        f"sum({names.key_idle_waste_seconds}{{{key_target}}}) / 3600",
        'printf "%.1f"',
        extra_args=key_arg(),
    )
    browser_hours = query_value(
        c,
        f"sum({names.key_browser_seconds}{{{key_target}}}) / 3600",
        'printf "%.1f"',
        extra_args=key_arg(),
    )

    def waste_condition(ratio: str, seconds: str) -> str:
        return (
            f"{ratio} > {c.value('idle_waste_share', 'number')}\n"
            f"and\n{seconds} >= {c.value('idle_waste_min_duration', 'seconds')}\n"
        )

    result.append(
        Alert(
            name="NotteIdleWasteHigh",
            expr=per_key_or_account(
                waste_condition(names.key_idle_waste_ratio, names.key_idle_waste_seconds),
                waste_condition(names.idle_waste_ratio, names.idle_waste_seconds),
            ),
            for_=c.value("idle_waste_for"),
            severity="warning",
            summary="Much of the billed Notte browser time is idle time of leaked sessions.",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the browser time "
                f"{key_name('of sessions ')}billed on {inst} "
                f"in the last {waste_window} ({waste_hours} of {browser_hours} browser hours) "
                "was spent waiting for the idle timeout of sessions nobody stopped "
                f"(threshold {c.value('idle_waste_share', 'percent')} and at least "
                f"{c.value('idle_waste_min_duration', 'human')}): leaked sessions are paid for "
                "doing nothing."
            ),
        )
    )
    last_read = query_value(
        c,
        f"time() - max(notte_usage_last_success_timestamp_seconds{{{target}}})",
        "humanizeDuration",
    )
    result.append(
        Alert(
            name="NotteUsageUnavailable",
            expr=f"{c.metric('notte_usage_up')} == 0",
            for_=c.value("usage_unavailable_for"),
            severity="warning",
            summary="notte-exporter cannot read the account's usage.",
            description=(
                f"Every read of GET /usage by {inst} has failed for more than "
                f"{c.value('usage_unavailable_for', 'human')} (notte_usage_up is 0; last "
                f"success {last_read} ago, `?` if never since the exporter started): the "
                "cost metrics are frozen or missing and the cost alerts are blind. The "
                "session metrics are unaffected. The exporter's log says why."
            ),
        )
    )
    return result
