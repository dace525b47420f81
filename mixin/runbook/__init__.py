"""docs/alerts.md: the runbook every alert links to, with thresholds taken from the config.

The prose lives here rather than in a hand-written page so that the numbers it quotes are
always the ones the rules use.
"""

from __future__ import annotations

from mixin.config import Config, human_duration, percent
from mixin.rules import ALERT_GROUPS, RECORDING_GROUPS, alerts
from mixin.rules.sessions import record_names
from mixin.runbook.cost import cost_sections, cost_threshold_rows
from mixin.runbook.reaper import reaper_sections, reaper_threshold_rows


def _thresholds_table(config: Config) -> str:
    c = config
    rows = [
        (
            "NotteExporterDown",
            f"`up == 0` or no target for {c.exporter_down_for}; "
            f"`notte_up == 0` for {c.polls_failing_for}",
        ),
        (
            "NotteExporterStale",
            f"last successful poll older than {c.stale_after} "
            f"while polls do not fail, for {c.stale_for}",
        ),
        (
            "NotteApiRateLimited",
            f"> {percent(c.rate_limited_poll_share)} of polls "
            f"failed with 429 over {c.rate_limited_window}, for {c.rate_limited_for}; or < "
            f"{percent(c.rate_limit_budget_low_share)} of the budget left for "
            f"{c.rate_limit_budget_for}",
        ),
        (
            "NotteSessionLeak",
            f"> {percent(c.leak_share)} of sessions ended in "
            f"{c.sessions_ended_window} closed by idle timeout, at least "
            f"{c.leak_min_ended_sessions} ended, for {c.leak_for}",
        ),
        (
            "NotteSessionErrorsHigh",
            f"> {percent(c.errors_share)} of sessions ended "
            f"in {c.sessions_ended_window} with status error, at least "
            f"{c.errors_min_ended_sessions} ended, for {c.errors_for}",
        ),
        ("NotteSessionsOverdue", f"any overdue session for {c.overdue_for}"),
        ("NotteSessionsIdle", f">= {c.idle_sessions} idle live sessions for {c.idle_for}"),
        (
            "NotteSessionsLongRunning",
            f"a live session older than {c.long_running_after}, for {c.long_running_for}",
        ),
        (
            "NotteSessionsNearLimit",
            f">= "
            f"{percent(c.near_limit_warning_share)} / {percent(c.near_limit_critical_share)} of "
            f"--sessions.limit for {c.near_limit_for}",
        ),
        *cost_threshold_rows(config),
        *reaper_threshold_rows(config),
    ]
    severities: dict[str, list[str]] = {}
    for alert in alerts(config):
        severities.setdefault(alert.name, []).append(alert.severity)
    lines = ["| Alert | Severity | Fires when |", "| --- | --- | --- |"]
    lines += [
        f"| [{name}](#{name.lower()}) | {' / '.join(dict.fromkeys(severities[name]))} | {text} |"
        for name, text in rows
    ]
    return "\n".join(lines)


def _sections(config: Config) -> dict[str, str]:
    c = config
    names = record_names(c)
    ended = human_duration(c.sessions_ended_window)
    return {
        "NotteExporterDown": f"""\
**Meaning.** Nothing watches the Notte account any more, so no session alert can fire.
Three causes, told apart by the `cause` label:
- `scrape_failed`: Prometheus's scrapes of the exporter fail (`up == 0`) for
  {human_duration(c.exporter_down_for)}.
- `target_missing`: Prometheus has no target matching `{c.selector}` at all for
  {human_duration(c.exporter_down_for)}.
- `polls_failing`: the exporter runs, but every poll of the Notte API fails (`notte_up == 0`)
  for {human_duration(c.polls_failing_for)}.

**Check.**
- `scrape_failed`: is the process or pod running (`kubectl get pods`, `systemctl status`)?
  Does `curl http://<instance>/healthz` answer? The target's last error is on Prometheus's
  *Status → Targets* page.
- `target_missing`: the scrape configuration (job name `notte-exporter`, port 10717) or
  the Helm chart's ServiceMonitor and the labels your Prometheus selects ServiceMonitors by.
- `polls_failing`: `notte_exporter_poll_failures_total` by `reason` on the *Notte exporter*
  dashboard and the exporter's log. `unauthorized`/`forbidden`: the API key is wrong,
  revoked or unreadable (`--notte.api-key-file`). `invalid_key`: the key file holds
  something that is not a key (a second line, a space, a non-ASCII character); the log says
  what, never the value. `rate_limited`: see
  [NotteApiRateLimited](#notteapiratelimited). `timeout`/`network`: egress to
  `--notte.api-url`. `server_error`/`invalid_response`: the Notte API itself
  (status page, support). `other`: an unexpected answer, or an error of the exporter's
  own (the log says `cannot render /metrics` or `an unexpected error in the exporter`):
  report the log line to the maintainers.

**Act.** Restart or redeploy the exporter; fix the key (a new secret, then restart), the
network policy, or the scrape configuration. While it lasts, check leaks by hand in the
Notte console.""",
        "NotteExporterStale": f"""\
**Meaning.** The last successful poll is older than {human_duration(c.stale_after)} (for
{human_duration(c.stale_for)}) although the last poll did not fail: the poll loop is stuck,
a poll takes far longer than `--poll.interval`, or `/metrics` cannot be rendered at all
(scrapes then get the last poll that rendered; the log says `cannot render /metrics`).
Metrics still look fine but are old. (A poll loop that has stopped fails `/healthz`, so
that the exporter is restarted.)
Failing polls raise [NotteExporterDown](#notteexporterdown) (`polls_failing`) instead.

**Check.** The *Last successful poll* and *Poll duration* panels of the *Notte exporter*
dashboard; the exporter's log (debug level shows each poll); whether `--poll.interval` is
longer than {human_duration(c.stale_after)} on purpose.

**Act.** Restart the exporter and report the log to the maintainers. If the poll interval
is long on purpose, raise `stale_after` in `mixin/config.py` and regenerate.""",
        "NotteApiRateLimited": f"""\
**Meaning.** The API key's rate limit is shared by the exporter and your own automation.
- `cause="polls_rate_limited"`: more than {percent(c.rate_limited_poll_share)} of the polls in
  {human_duration(c.rate_limited_window)} failed on HTTP 429 after the exporter's retries
  (for {human_duration(c.rate_limited_for)}).
- `cause="budget_low"`: less than {percent(c.rate_limit_budget_low_share)} of the budget
  (`notte_api_rate_limit_remaining / notte_api_rate_limit_limit`) was left after the polls
  for {human_duration(c.rate_limit_budget_for)}: your automation is about to be refused.

**Check.** *Rate-limit budget* and *API requests by endpoint and code* on the *Notte
exporter* dashboard: how many requests the exporter makes per poll (pages of
`--notte.page-size`, plus up to `--sessions.lookup-budget` lookups of ended sessions)
against what your automation makes.

**Act.** Make the exporter cheaper: a longer `--poll.interval`, `--notte.page-size 100`,
a lower `--sessions.lookup-budget`, or `--notte.only-current-token` with a key of its own.
Slow down the automation or ask Notte for a higher limit.""",
        "NotteSessionLeak": f"""\
**Meaning.** Of the sessions that ended in the last {ended} and whose close reason is
known, more than {percent(c.leak_share)} were closed by the platform's idle timeout, and at
least {c.leak_min_ended_sessions} such sessions ended (so one stray session does not page),
for {human_duration(c.leak_for)}. A session closed by idle timeout is one its client never
stopped: it was billed, and held a slot of the plan's concurrency limit, until it timed out.
Recording rules: `{names.idle_timeout_ratio}` (the share) over
`{names.closed_by_reason}` (ended sessions by close reason).

**Check.** *Session ends by close reason* and *Leak and error shares* on the *Notte
sessions* dashboard: when did `idle_timeout` grow, and for which browser type
(`notte_sessions_closed_total{{close_reason="idle_timeout"}}` by `browser_type`)? Which
deployment of your automation changed then? *Idle sessions* and the *Oldest live
sessions* table show sessions leaking right now.

**Act.** Fix the client: stop every session it starts (`with client.Session(...)` or
`session.stop()` in a `finally`), including on errors and cancellations. Meanwhile stop
leaked sessions by id (`DELETE /sessions/{{session_id}}/stop`) and lower their
`idle_timeout_minutes` so that leaks cost less.""",
        "NotteSessionErrorsHigh": f"""\
**Meaning.** Of the sessions that ended in the last {ended} with a known status, more than
{percent(c.errors_share)} ended with status `error`, with at least
{c.errors_min_ended_sessions} ended sessions, for {human_duration(c.errors_for)}.
Recording rules: `{names.error_ratio}` over `{names.closed_by_status}`.

**Check.** *Session ends by status* by browser type; *Live sessions with an error*; the
Notte status page; the `error` field of failed sessions (`GET /sessions/{{session_id}}`, or the
console) for a common message; whether the failures started with a change of browser type,
proxies or captcha solving (*Live sessions by feature*).

**Act.** Platform incident: contact Notte support and pause heavy jobs. Your own
configuration (a browser type, a proxy, a feature): roll it back.""",
        "NotteSessionsOverdue": f"""\
**Meaning.** Sessions are still live past their own `max_duration_minutes`
(`reason="max_duration"`) or past `last_accessed_at + idle_timeout_minutes`
(`reason="idle_timeout"`), plus the exporter's `--sessions.overdue-grace`, for
{human_duration(c.overdue_for)}. A healthy platform closes them itself; these keep being
billed and keep holding slots of the concurrency limit.

**Check.** The *Oldest live sessions* table (ids, age, idle time) and *Idle and overdue
sessions*. Confirm with `GET /sessions/{{session_id}}` that they are still `active`.

**Act.** Stop them (`DELETE /sessions/{{session_id}}/stop`, or the console) and report the
ids to Notte support: the platform failed to enforce its limits.""",
        "NotteSessionsIdle": f"""\
**Meaning.** At least {c.idle_sessions} live sessions have not been accessed for longer than
the exporter's `--sessions.idle-threshold`, continuously for {human_duration(c.idle_for)}.
They hold capacity and are billed while doing nothing; sessions idle this long are usually
leaks that have not timed out yet (long `idle_timeout_minutes`).

**Check.** *Idle and overdue sessions* by browser type; the *Idle for* column of the
*Oldest live sessions* table; which jobs of your automation keep sessions open between
tasks.

**Act.** Stop sessions that are not needed; reuse fewer, busier sessions; lower
`idle_timeout_minutes` so that abandoned sessions end sooner. If holding idle sessions is
intended (warm pools), raise `idle_sessions` in `mixin/config.py`.""",
        "NotteSessionsLongRunning": f"""\
**Meaning.** A live session is older than {human_duration(c.long_running_after)} (for
{human_duration(c.long_running_for)}). The alert names the session (`session_id`,
`browser_type`, `status` labels) from the exporter's per-session series of the
`--sessions.detail-limit` oldest sessions; with `--sessions.detail-limit 0` it fires once,
unnamed, from `notte_sessions_oldest_created_timestamp_seconds`. Informational: the session
is still within its own limits (otherwise [NotteSessionsOverdue](#nottesessionsoverdue)
fires), but few workloads need a browser this long.

**Check.** The *Oldest live sessions* table: is it still being accessed (*Idle for*)? Which
job owns it?

**Act.** If nobody needs it, stop it (`DELETE /sessions/{{session_id}}/stop`). If long
sessions are normal for you, raise `long_running_after` in `mixin/config.py`.""",
        "NotteSessionsNearLimit": f"""\
**Meaning.** Live sessions reach {percent(c.near_limit_warning_share)} (`severity=warning`)
or {percent(c.near_limit_critical_share)} (`severity=critical`) of the plan's concurrency
limit for {human_duration(c.near_limit_for)}; once at the limit, new sessions are refused
(HTTP 529 or a plan error). The API does not report the limit: the alert exists only where
the exporter runs with `--sessions.limit` (`notte_sessions_limit`). Both severities fire
near the limit; an Alertmanager inhibit rule keeps one notification:

```yaml
inhibit_rules:
  - source_matchers: [alertname="NotteSessionsNearLimit", severity="critical"]
    target_matchers: [alertname="NotteSessionsNearLimit", severity="warning"]
    equal: [job, instance]
```

**Check.** *Live sessions and plan limit*; whether idle, overdue or leaked sessions take
the room ([NotteSessionsIdle](#nottesessionsidle), [NotteSessionLeak](#nottesessionleak)).

**Act.** Stop sessions nobody uses, fix leaks, queue work in your automation, or move to a
larger plan (and update `--sessions.limit`).""",
    }


def runbook(config: Config) -> str:
    sections = {**_sections(config), **cost_sections(config), **reaper_sections(config)}
    alert_names = list(dict.fromkeys(alert.name for alert in alerts(config)))
    missing = set(alert_names) ^ set(sections)
    if missing:
        raise ValueError(f"runbook and alerts disagree on: {sorted(missing)}")
    records = "\n".join(
        f"- `{rule['record']}`" for _, build in RECORDING_GROUPS for rule in build(config)
    )
    groups = ", ".join(f"`{name}`" for name, _ in ALERT_GROUPS)
    recording_groups = ", ".join(f"`{name}`" for name, _ in RECORDING_GROUPS)
    body = "\n\n".join(f"## {name}\n\n{sections[name]}" for name in alert_names)
    return f"""\
<!-- Generated by `python -m mixin` from mixin/runbook.py and mixin/config.py; do not edit. -->
# Alerts and runbook

The bundle's Prometheus rules live in `prometheus/rules/notte-exporter.rules.yaml` (alert
groups by subject: {groups}; recording rules in {recording_groups}) and in the Helm
chart, whose values can disable each alert and change its severity, thresholds and
for-durations (`prometheusRule.alerts`, see docs/deployment.md). Every alert carries
`severity`, `summary`, `description` (with the numbers involved) and a `runbook_url`
pointing at its section below.

Severities: `critical` needs someone now (blind monitoring, money leaking, sessions about to
be refused); `warning` needs a look within working hours; `info` is context, not routed to
a pager.

The rules match `{config.selector}` and keep every target label (aggregations use
`without`), so Alertmanager can route on `namespace`, `instance` and so on.

## Thresholds

{_thresholds_table(config)}

To change a threshold, selector, window or the runbook base URL, edit `mixin/config.py`, or
keep the code and pass overrides: `python -m mixin --config my-overrides.yaml --output-dir
out/` with a YAML mapping of field names to values (for example `leak_share: 0.5`).
`make generate` rewrites the committed files; CI fails when they differ from the generator.

Recording rules:
{records}

{body}

## How the bundle is checked

`tests/monitoring/` runs `promtool check rules` on the rule file and its Helm copy, and
`promtool test rules prometheus/tests/*.yaml`: every alerting rule has a case where it fires
(exact labels and annotations), every alert cases where it must stay quiet. An end-to-end test
starts a real Prometheus that scrapes `notte-exporter --demo --demo.profile leak` every
second with these rules at second-long windows, waits for `NotteSpendForecastOverLimit`,
`NotteIdleWasteHigh`, `NotteSessionLeak` and `NotteSessionsOverdue` to fire, runs every
dashboard panel's query (template variables substituted) and requires data from each, then
stops the exporter and waits for `NotteExporterDown`. No Grafana server was available: the
dashboards were checked as JSON (data source only through the `${{datasource}}` variable,
job and instance variables, units, grid layout) and through their queries as above, not
rendered. The cost alerts' month end and rollover are pinned by
`prometheus/tests/cost-month-end.yaml` (January 1970, promtool's clock).
"""
