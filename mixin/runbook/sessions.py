"""The runbook sections and threshold rows of the `notte-sessions` alerts, for docs/alerts.md.

The sections name the recording rules an alert reads (`record_names`), so the runbook says
what to query under the names the rule file gives them.
"""

from __future__ import annotations

from mixin.config import Config, human_duration, percent
from mixin.rules.sessions import record_names


def session_threshold_rows(config: Config) -> list[tuple[str, str]]:
    c = config
    return [
        (
            "NotteSessionLeak",
            f"> {percent(c.leak_share)} of sessions ended in "
            f"{c.leak_window} closed by idle timeout, at least "
            f"{c.leak_min_idle_timeouts} of them, for {c.leak_for}",
        ),
        (
            "NotteSessionErrorsHigh",
            f"> {percent(c.errors_share)} of sessions ended "
            f"in {c.sessions_ended_window} with status error, at least "
            f"{c.errors_min_ended_sessions} ended and {c.errors_min_errors} errors, "
            f"for {c.errors_for}",
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
    ]


def session_sections(config: Config) -> dict[str, str]:
    c = config
    names = record_names(c)
    ended = human_duration(c.sessions_ended_window)
    return {
        "NotteSessionLeak": f"""\
**Meaning.** Of the sessions that ended in the last {human_duration(c.leak_window)} and
whose close reason is known, more than {percent(c.leak_share)} were closed by the
platform's idle timeout, and at least {c.leak_min_idle_timeouts} such sessions ended (so
the odd session a healthy client forgets does not page), for
{human_duration(c.leak_for)}. A session closed by idle timeout is one its client never
stopped: it was billed, and held a slot of the plan's concurrency limit, until it timed out.
The window is short so that a leak pages within about `for` of its first idle timeouts;
`{names.idle_timeout_ratio}` records the same share over {ended} per account, and
`{names.key_idle_timeout_ratio}` over `{names.key_closed_by_reason}` per API key, for the
dashboards and this page.

**Reading the key.** With `--config.file` the alert names the `account` and, when one key
is to blame, the `key`: the name (from the config file) of the API key whose sessions leak,
judged on that key's own ended sessions, so the other keys' healthy ends do not hide it.
`key="other"` (the description says "no named key") is sessions that none of the account's
named keys started: the account key itself, or keys the config file does not name. An
alert with `account` but no `key` means no single key reached the thresholds alone while
the account as a whole did (several keys each leaking a little). Without `--config.file`
there is no `key`, and `account` only where the scrape adds it.

**Check.** The *Who leaks* row of the *Notte sessions* dashboard (select the alert's
account): *Leak share by key* and *Top 10 keys by idle waste* show which key leaks and
since when; the key's name says which agent, team or service to call. Then *Session ends
by close reason* and *Leak and error shares*: when did `idle_timeout` grow, and for which
browser type (`notte_sessions_closed_total{{close_reason="idle_timeout"}}` by
`browser_type`)? Which
deployment of your automation changed then? *Idle sessions* and the *Oldest live
sessions* table show sessions leaking right now.

**Act.** Fix the client: stop every session it starts (`with client.Session(...)` or
`session.stop()` in a `finally`), including on errors and cancellations. Meanwhile stop
leaked sessions by id (`DELETE /sessions/{{session_id}}/stop`) and lower their
`idle_timeout_minutes` so that leaks cost less.""",
        "NotteSessionErrorsHigh": f"""\
**Meaning.** Of the sessions that ended in the last {ended} with a known status, more than
{percent(c.errors_share)} ended with status `error`, with at least
{c.errors_min_ended_sessions} ended sessions and {c.errors_min_errors} errors (so that two
unlucky sessions of a quiet hour do not page), for {human_duration(c.errors_for)}.
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
    equal: [job, instance, {c.account_label}]
```

**Check.** *Live sessions and plan limit*; whether idle, overdue or leaked sessions take
the room ([NotteSessionsIdle](#nottesessionsidle), [NotteSessionLeak](#nottesessionleak)).

**Act.** Stop sessions nobody uses, fix leaks, queue work in your automation, or move to a
larger plan (and update `--sessions.limit`).""",
    }
