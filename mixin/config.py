"""The one place holding the bundle's selectors, thresholds, windows and for-durations.

Every alert, recording rule, dashboard and the runbook read their numbers from a `Config`,
so changing a threshold here changes it everywhere at once. Users override fields from a
YAML/JSON mapping (`python -m mixin --config overrides.yaml`) instead of editing code; the
end-to-end test does the same to shrink windows to seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from notte_exporter.durations import prometheus_duration


def duration_seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as `90s`, `15m` or `1h30m`.

    The project's one duration parser, held to what Prometheus accepts: these durations are
    written into PromQL and rule files. Whole seconds come back as an int, so that generated
    JSON and PromQL say `600`, not `600.0`.
    """
    seconds = prometheus_duration(duration)
    return int(seconds) if seconds.is_integer() else seconds


def human_duration(duration: str) -> str:
    """A duration as prose for descriptions and the runbook (`1h` -> `1 hour`)."""
    seconds = duration_seconds(duration)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return duration


def percent(share: float) -> str:
    """A share in [0, 1] as the percentage text people read (`0.25` -> `25%`)."""
    return f"{share * 100:g}%"


# How a field's value is written into a rule: as given, as an integer, as a number, as a
# percentage, as seconds, or as prose. The Helm chart's rule template implements the same
# forms (templates/_rules.tpl), so its default values render exactly the mixin's rules.
FORMS = ("raw", "int", "number", "percent", "seconds", "human")


def format_value(value: Any, form: str) -> str:
    if form == "raw":
        return str(value)
    if form == "int":
        return str(int(value))
    if form == "number":
        return f"{value:g}"
    if form == "percent":
        return percent(value)
    if form == "seconds":
        return f"{duration_seconds(value):g}"
    if form == "human":
        return human_duration(value)
    raise ValueError(f"unknown form {form!r}; expected one of {', '.join(FORMS)}")


@dataclass(frozen=True)
class Config:
    """Selectors, thresholds, windows and for-durations of the monitoring bundle."""

    # Label matchers that pick the exporter's series; the job name of the example scrape
    # configuration and of the Helm chart's ServiceMonitor.
    selector: str = 'job="notte-exporter"'
    # Labels that tell one exporter (one watched account) from another on dashboards and in
    # descriptions. Aggregations drop only the metric's own labels (`without`), so target
    # labels such as namespace or pod survive into alerts for routing.
    instance_label: str = "instance"
    # Label naming the Notte account an exporter watches, when the scrape adds one (the Helm
    # chart's `account` value, or a static label in the scrape config). Dashboards filter on
    # it and alert descriptions name it; without it everything works the same.
    account_label: str = "account"
    # Every alert links to `<runbook_url_base>#<alertname in lower case>`.
    runbook_url_base: str = (
        "https://github.com/notte-exporter/notte-exporter/blob/main/docs/alerts.md"
    )

    # NotteExporterDown: Prometheus cannot scrape the exporter, or no target exists.
    exporter_down_for: str = "5m"
    # NotteExporterDown: the exporter runs but its polls of the Notte API fail.
    polls_failing_for: str = "10m"
    # NotteExporterStale: age of the last successful poll while polls do not report failure.
    stale_after: str = "10m"
    stale_for: str = "2m"
    # NotteApiRateLimited: share of polls that failed with HTTP 429 over a window...
    rate_limited_window: str = "15m"
    rate_limited_poll_share: float = 0.1
    # ... and the least number of such polls: polled every 2 minutes, one stray 429 is 13% of
    # a 15-minute window (the soak paged for it 35 times in a month, docs/accuracy.md).
    rate_limited_min_polls: int = 3
    rate_limited_for: str = "5m"
    # ... or share of the API key's rate-limit budget left (the budget is shared with the
    # user's own automation).
    rate_limit_budget_low_share: float = 0.1
    rate_limit_budget_for: str = "10m"

    # Window over which ended sessions are counted for the error share (and the dashboards).
    sessions_ended_window: str = "1h"
    # NotteSessionLeak: share of the sessions ended in its own window (known close reason)
    # that the idle timeout closed, and the least number of them. The window is short
    # because an hour's healthy ends dilute a leak's first idle timeouts: over 1h the soak's
    # leaks paged 39-59 minutes after they began; over 15m, within `for` of their 4th idle
    # timeout. 4 in 15 minutes is more than a healthy account's forgotten sessions make
    # (3 did, once in the soak's month); 15% is under a leak's share of a busy hour's ends
    # when its first sessions time out (docs/accuracy.md).
    leak_window: str = "15m"
    leak_share: float = 0.15
    leak_min_idle_timeouts: int = 4
    leak_for: str = "15m"
    # NotteSessionErrorsHigh: share of ended sessions whose final status is error, and the
    # least number of errors: at a quiet hour's dozen ends, two errors are 10% by chance
    # (the soak's nights paged about once a day on a 3% error rate, docs/accuracy.md).
    errors_share: float = 0.1
    errors_min_ended_sessions: int = 10
    errors_min_errors: int = 5
    errors_for: str = "15m"
    # NotteSessionsOverdue: sessions live past their max duration or idle timeout.
    overdue_for: str = "5m"
    # NotteSessionsIdle: live sessions not accessed for longer than the exporter's
    # --sessions.idle-threshold.
    idle_sessions: int = 5
    idle_for: str = "15m"
    # NotteSessionsLongRunning: age of a live session.
    long_running_after: str = "4h"
    long_running_for: str = "5m"
    # NotteSessionsNearLimit: live sessions as a share of --sessions.limit.
    near_limit_warning_share: float = 0.8
    near_limit_critical_share: float = 0.95
    near_limit_for: str = "5m"

    # Cost, from GET /usage (notte_usage_*) and the sessions' browser time. Notte's billing
    # period is the calendar month; the forecast takes it in UTC.
    # NotteUsageLimitExceeded: the API reports the usage limit exceeded.
    usage_limit_exceeded_for: str = "1m"
    # NotteCreditsLow: credits left as a share of the period's limit. Notte's own email goes
    # out at 80% spent, i.e. 20% left.
    credits_low_warning_share: float = 0.2
    credits_low_critical_share: float = 0.05
    credits_low_for: str = "15m"
    # NotteSpendForecastOverLimit: the burn rate (dollars per hour) is the slope of the
    # period's spend over this window; at that rate, spend passes the limit before the month
    # ends.
    spend_rate_window: str = "6h"
    spend_forecast_for: str = "30m"
    # NotteIdleWasteHigh: share of browser seconds in the window that were idle time of
    # sessions closed by idle timeout, and the least idle time that may fire.
    idle_waste_window: str = "6h"
    idle_waste_share: float = 0.25
    idle_waste_min_duration: str = "10m"
    idle_waste_for: str = "15m"
    # NotteUsageUnavailable: the exporter cannot read GET /usage.
    usage_unavailable_for: str = "30m"

    # NotteReaperFailing: of the stops the reaper tried in the window (stopped, already gone
    # or failed), the share that failed, and the least number of failures that may fire.
    reaper_failing_window: str = "30m"
    reaper_failing_share: float = 0.5
    reaper_failing_min_failures: int = 3
    reaper_failing_for: str = "15m"

    # Dashboards.
    dashboard_uid_prefix: str = "notte"
    dashboard_tags: tuple[str, ...] = ("notte", "notte-exporter")
    dashboard_refresh: str = "30s"
    dashboard_time_from: str = "now-6h"

    def __post_init__(self) -> None:
        problems = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name.endswith(("_for", "_window", "_after", "_duration")):
                try:
                    # YAML reads `10` as a number: a duration needs its unit.
                    duration_seconds(value if isinstance(value, str) else repr(value))
                except ValueError as error:
                    problems.append(f"{field.name}: {error}")
            if field.name.endswith("_share") and not 0 < value <= 1:
                problems.append(f"{field.name}: {value!r} is not a share in (0, 1]")
        if self.near_limit_warning_share >= self.near_limit_critical_share:
            problems.append("near_limit_warning_share must be below near_limit_critical_share")
        if self.credits_low_critical_share >= self.credits_low_warning_share:
            problems.append("credits_low_critical_share must be below credits_low_warning_share")
        if problems:
            raise ValueError("invalid mixin config: " + "; ".join(problems))

    def metric(self, name: str, matchers: str = "") -> str:
        """A selector for `name` restricted to the exporter's series plus extra matchers."""
        return f"{name}{{{', '.join(m for m in (self.selector, matchers) if m)}}}"

    def value(self, name: str, form: str = "raw") -> str:
        """A threshold, window or for-duration as rule text in one of `FORMS`. Rules read
        tunable fields only through here, so the chart's copy can put a placeholder for a
        chart value in their place (mixin/chart.py)."""
        return format_value(getattr(self, name), form)

    def severity(self, alertname: str, default: str) -> str:
        """The severity label of an alert's rules (the chart makes it a value)."""
        return default

    def runbook_url(self, alertname: str) -> str:
        """The runbook anchor of an alert (GitHub lower-cases heading anchors)."""
        return f"{self.runbook_url_base}#{alertname.lower()}"

    def with_overrides(self, overrides: Mapping[str, Any]) -> Config:
        """A copy with some fields replaced; unknown names are refused, not ignored."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown mixin config field(s): {', '.join(unknown)}")
        values = dict(overrides)
        if "dashboard_tags" in values:
            values["dashboard_tags"] = tuple(values["dashboard_tags"])
        return dataclasses.replace(self, **values)


DEFAULT = Config()
