"""The runbook sections and threshold rows of the cost alerts, for docs/alerts.md.

Kept apart from the session and exporter sections so that the numbers they quote come from
the same `Config` fields as the cost rule group, and the money story reads in one place.
"""

from __future__ import annotations

from mixin.config import Config, human_duration, percent
from mixin.rules.cost import SECONDS_TO_MONTH_END, cost_record_names


def cost_threshold_rows(config: Config) -> list[tuple[str, str]]:
    c = config
    return [
        (
            "NotteUsageLimitExceeded",
            f"`notte_usage_limit_exceeded == 1` for {c.usage_limit_exceeded_for}",
        ),
        (
            "NotteCreditsLow",
            f"credits left < {percent(c.credits_low_warning_share)} / "
            f"{percent(c.credits_low_critical_share)} of the limit for {c.credits_low_for}",
        ),
        (
            "NotteSpendForecastOverLimit",
            f"spend + burn rate over {c.spend_rate_window} * time to the end of the month > "
            f"the limit, for {c.spend_forecast_for}",
        ),
        (
            "NotteIdleWasteHigh",
            f"> {percent(c.idle_waste_share)} of browser seconds in {c.idle_waste_window} "
            "were idle time of sessions closed by idle timeout, at least "
            f"{c.idle_waste_min_duration} of it, for {c.idle_waste_for}",
        ),
        ("NotteUsageUnavailable", f"`notte_usage_up == 0` for {c.usage_unavailable_for}"),
    ]


def cost_sections(config: Config) -> dict[str, str]:
    c = config
    names = cost_record_names(c)
    rate_window = human_duration(c.spend_rate_window)
    waste_window = human_duration(c.idle_waste_window)
    return {
        "NotteUsageLimitExceeded": f"""\
**Meaning.** `GET /usage` reports `is_usage_limit_exceeded` (`notte_usage_limit_exceeded ==
1`) for {human_duration(c.usage_limit_exceeded_for)}: the period's credits (subscription plus
top-up) are used up. Unless a card is on file, Notte refuses new work with HTTP 402 until
the period resets on the 1st of the month (UTC); your automation fails, the exporter keeps
watching.

**Check.** The *Notte cost* dashboard: *Spend this period by category* (what used the
credits), *Idle waste share* (how much of the browser time was leaked sessions waiting for
their idle timeout), *Proxied traffic* (proxies are billed per GB). `notte_usage_info` names the
plan and period.

**Act.** Add a card or top up in the Notte console, or move to a larger plan. Stop leaked
and idle sessions ([NotteIdleWasteHigh](#notteidlewastehigh),
[NotteSessionLeak](#nottesessionleak)); turn proxies off for sessions that do not need them.""",
        "NotteCreditsLow": f"""\
**Meaning.** The credits left this period (`notte_usage_total_balance_dollars`, the API's
`balance_amount`) are below {percent(c.credits_low_warning_share)} (`severity=warning`, the
point where Notte emails the account owner) or {percent(c.credits_low_critical_share)}
(`severity=critical`) of the period's limit (`sum without (source)
(notte_usage_limit_dollars)`, subscription plus top-up) for
{human_duration(c.credits_low_for)}. When the month rolls over the balance is back to the
full limit and the alert resolves by itself. Both severities fire near the end; an
Alertmanager inhibit rule keeps one notification, and another one silences both while
[NotteUsageLimitExceeded](#notteusagelimitexceeded) fires:

```yaml
inhibit_rules:
  - source_matchers: [alertname="NotteCreditsLow", severity="critical"]
    target_matchers: [alertname="NotteCreditsLow", severity="warning"]
    equal: [job, instance, {c.account_label}]
  - source_matchers: [alertname="NotteUsageLimitExceeded"]
    target_matchers: [alertname="NotteCreditsLow"]
    equal: [job, instance, {c.account_label}]
```

**Check.** *Balance and limit* and *Days of credit left* on the *Notte cost* dashboard:
is this the normal end of a busy month, or does the *Burn rate* jump (leaks, a new job,
proxied traffic)?

**Act.** Top up or add a card before the credits run out; slow down or pause jobs that can
wait for the next period; fix leaks.""",
        "NotteSpendForecastOverLimit": f"""\
**Meaning.** At the burn rate of the last {rate_window}, spend this period would pass the
limit before the month ends, for {human_duration(c.spend_forecast_for)}: `spend +
burn rate * time left in the month > limit`. The burn rate is the recording rule
`{names.burn_rate}`, the slope (`deriv`) of `notte_usage_total_cost_dollars` over
{rate_window} in dollars per hour, clamped at 0. The time left is computed in PromQL, in
UTC, as `{SECONDS_TO_MONTH_END}`. It stays quiet once the limit is exceeded
([NotteUsageLimitExceeded](#notteusagelimitexceeded) takes over) and, because the slope of a
window that holds the month rollover is clamped to 0, for at most {rate_window} after the
rollover: spend drops to near 0 then and must not read as a negative or a huge rate.

**Check.** The *Forecast to the end of the month* and *Burn rate by category* panels of the
*Notte cost* dashboard: which category grew, and since when? A browser burn rate that grew
with the idle waste share points at leaked sessions.

**Act.** Find and stop what burns (leaked sessions, a runaway job, proxied traffic), or top
up before the credits run out. If spend is front-loaded on purpose, lengthen
`spend_rate_window` in `mixin/config.py`.""",
        "NotteIdleWasteHigh": f"""\
**Meaning.** Over the last {waste_window}, more than {percent(c.idle_waste_share)} of the
browser time billed for the sessions the exporter watched was idle time of sessions closed
by the platform's idle timeout, and at least {human_duration(c.idle_waste_min_duration)} of
it, for {human_duration(c.idle_waste_for)}. A session nobody stops is billed from its last
use until its idle timeout closes it: that wait is pure waste. Recording rules:
`{names.idle_waste_ratio}` (the share) =
`{names.idle_waste_seconds}` (`notte_sessions_idle_seconds_total{{close_reason="idle_timeout"}}`)
over `{names.browser_seconds}` (`notte_sessions_browser_seconds_total`), per account; the
same per API key as `{names.key_idle_waste_ratio}`.

**Reading the key.** With `--config.file` the alert names the `account` and, when one key
is to blame, the `key` whose sessions waste more than the threshold of their own browser
time (the description says "no named key" for `key="other"`: sessions none of the
account's named keys started). An alert with `account` but no `key`: no single key
reached the thresholds alone, the account as a whole did. See
[NotteSessionLeak](#nottesessionleak).

**Check.** The *Who leaks* row of the *Notte sessions* dashboard (*Idle waste share by
key*, *Top 10 keys by idle waste*, *Browser dollars by key*), *Idle waste share* and *Idle
waste this period (estimate)* on the *Notte cost* dashboard, and on the *Notte sessions*
dashboard *Session ends by close reason* (the same leak, counted in sessions;
[NotteSessionLeak](#nottesessionleak)) by browser type.

**Act.** Fix the client so that it stops every session it starts (`session.stop()` in a
`finally`); meanwhile lower `idle_timeout_minutes` on new sessions so that each leak costs
less.""",
        "NotteUsageUnavailable": f"""\
**Meaning.** Every read of `GET /usage` by the exporter has failed for
{human_duration(c.usage_unavailable_for)} (`notte_usage_up == 0`): the `notte_usage_*`
values are those of the last successful read (or absent) and the other cost alerts are
blind. The session metrics, `notte_up` and readiness are not affected.

**Check.** The exporter's log says why, once per cause. After HTTP 403 (the key may not read
usage) or 404 (no `/usage` on this API) the exporter asks again only hourly.
`notte_api_requests_total{{endpoint="/usage"}}` by `code` shows the answers.

**Act.** 403: use a key that may read usage, or switch the collector off with
`--no-collector.usage` (then `notte_usage_up` is not exposed and this alert cannot fire).
5xx or timeouts: the Notte API; the exporter retries every `--usage.interval`.""",
    }
