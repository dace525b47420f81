"""The metric catalogue: what each metric means and how to alert on it.

``docs/metrics.md`` is generated from this table *and* from a real exposition of the
exporter (names, types, labels and HELP texts come from the running code), so the reference
cannot drift from what ``/metrics`` serves; a test fails if either side gains a metric the
other lacks. Regenerate with ``python -m mixin.catalogue > docs/metrics.md``.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from notte_exporter.keys import ApiKey
from notte_exporter.settings import Settings
from notte_exporter.simulator import ManualClock, SimulatedAccount, SimulatorServer


@dataclass(frozen=True)
class Entry:
    name: str
    group: str
    advice: str


GROUPS = (
    ("exporter", "Exporter health"),
    ("api", "Notte API requests"),
    ("live", "Live sessions (gauges, last successful poll)"),
    ("leak", "Leak signals (gauges, last successful poll)"),
    ("detail", "The oldest live sessions, by id"),
    ("lifecycle", "Lifecycle (counters since the exporter started)"),
    ("cost", "Cost: browser time and idle waste (counters since the exporter started)"),
    ("usage", "Usage and credits (gauges, last successful read of GET /usage)"),
    ("reaper", "Reaper (only with --reaper.config.file; see docs/reaper.md)"),
)

ENTRIES = (
    Entry("notte_up", "exporter", "Page when 0 for a few minutes (NotteExporterDown); the "
          "reason is in notte_exporter_poll_failures_total."),
    Entry("notte_exporter_build_info", "exporter",
          'Join on it to show the version; `mode="demo"` means the data is simulated.'),
    Entry("notte_exporter_last_poll_success_timestamp_seconds", "exporter",
          "`time() - x` is the age of every snapshot gauge (NotteExporterStale)."),
    Entry("notte_exporter_poll_duration_seconds", "exporter",
          "Polls nearing --poll.timeout mean a slow API or too small a budget."),
    Entry("notte_exporter_polls_total", "exporter", "Denominator of failure ratios."),
    Entry("notte_exporter_poll_failures_total", "exporter",
          "`increase(...[10m]) > 0` by reason says why polls fail; every reason exists at 0."),
    Entry("notte_exporter_invalid_sessions_total", "exporter",
          "Should stay 0; growth means the API sends items the exporter cannot read."),
    Entry("notte_exporter_tracked_sessions", "exporter",
          "Memory of the lifecycle bookkeeping; `pending` staying high means ends are not "
          "being learned (raise --sessions.lookup-budget)."),
    Entry("notte_api_requests_total", "api",
          "Every request the exporter makes costs the account's shared rate limit."),
    Entry("notte_api_request_duration_seconds", "api", "API latency as the exporter sees it."),
    Entry("notte_api_retries_total", "api", "Retries of transient failures (429, 5xx, network)."),
    Entry("notte_api_rate_limit_limit", "api", "Absent until the API sends the header."),
    Entry("notte_api_rate_limit_remaining", "api",
          "Alert when low compared to the limit (NotteApiRateLimited): agents will get 429s."),
    Entry("notte_api_rate_limit_reset_timestamp_seconds", "api", "When the window resets."),
    Entry("notte_exporter_throttled_polls_total", "api",
          "Polls slowed down (pages one at a time, spaced out) because the rate limit ran low; "
          "growth means the account's agents and the exporter compete for it."),
    Entry("notte_exporter_rate_limit_wait_seconds_total", "api",
          "Time spent waiting to stay within the rate limit before any 429."),
    Entry("notte_exporter_poll_read_ahead", "api",
          "0 for an API that answers faster than a page is read (one at a time costs the "
          "least CPU), --notte.concurrency for a distant one; polls nearing --poll.timeout "
          "at that value need a higher --notte.concurrency."),
    Entry("notte_sessions_active", "live",
          "Sum for the account's concurrency; compare with notte_sessions_limit."),
    Entry("notte_sessions_active_with_feature", "live", "Feature usage of live sessions."),
    Entry("notte_sessions_active_network_request_bytes", "live",
          "Totals of live sessions only; use the *_bytes_total counters for throughput."),
    Entry("notte_sessions_active_network_response_bytes", "live",
          "Totals of live sessions only; use the *_bytes_total counters for throughput."),
    Entry("notte_sessions_active_with_error", "live", "Live sessions already reporting errors."),
    Entry("notte_sessions_overdue", "leak",
          "Should be 0: any other value is a session the platform failed to close, still billed "
          "(NotteSessionsOverdue)."),
    Entry("notte_sessions_active_idle", "leak",
          "Capacity held and paid for, doing nothing (NotteSessionsIdle)."),
    Entry("notte_sessions_oldest_created_timestamp_seconds", "leak",
          "`time() - x` is the age of the oldest live session (NotteSessionsLongRunning)."),
    Entry("notte_sessions_limit", "leak",
          "From --sessions.limit; `sum(notte_sessions_active) / notte_sessions_limit` is "
          "utilisation (NotteSessionsNearLimit)."),
    Entry("notte_session_info", "detail",
          "Names the N oldest live sessions (--sessions.detail-limit) so alerts can say which."),
    Entry("notte_session_created_timestamp_seconds", "detail", "Age of each of those sessions."),
    Entry("notte_session_last_accessed_timestamp_seconds", "detail",
          "Idle time of each of those sessions."),
    Entry("notte_sessions_started_total", "lifecycle", "`rate()` is session starts per second."),
    Entry("notte_sessions_closed_total", "lifecycle",
          'The share with close_reason="idle_timeout" is the leak ratio (NotteSessionLeak); '
          'the share with status="error" the error ratio (NotteSessionErrorsHigh).'),
    Entry("notte_session_duration_seconds", "lifecycle",
          "`histogram_quantile()` of lifetimes; buckets from 1s to a day."),
    Entry("notte_network_request_bytes_total", "lifecycle",
          '`rate()` is upload throughput; `proxy="true"` is the traffic billed per GB.'),
    Entry("notte_network_response_bytes_total", "lifecycle",
          '`rate()` is download throughput; `proxy="true"` is the traffic billed per GB.'),
    Entry("notte_sessions_browser_seconds_total", "cost",
          "What am I billed for? `rate()` is the number of open browsers; `increase(...[1d]) "
          "/ 3600` is browser hours a day. Denominator of the idle-waste share."),
    Entry("notte_sessions_idle_seconds_total", "cost",
          'How much of it was waste? `close_reason="idle_timeout"` over browser seconds is '
          "the share of billed time leaked sessions sat unused (NotteIdleWasteHigh)."),
    Entry("notte_usage_up", "usage",
          "0 means /usage is refused, missing or failing (NotteUsageUnavailable); never "
          "affects notte_up."),
    Entry("notte_usage_last_success_timestamp_seconds", "usage",
          "`time() - x` is the age of the usage values."),
    Entry("notte_usage_cost_dollars", "usage",
          "Where does the money go? Spend this period by category; drops to ~0 when the "
          "month rolls over."),
    Entry("notte_usage_total_cost_dollars", "usage",
          "How fast is it spent? `deriv(...[6h]) * 3600` is the burn rate in dollars an hour "
          "(NotteSpendForecastOverLimit)."),
    Entry("notte_usage_limit_dollars", "usage", "The period's credits by source."),
    Entry("notte_usage_balance_dollars", "usage", "Credits left by source."),
    Entry("notte_usage_total_balance_dollars", "usage",
          "When do the credits run out? Balance over the burn rate is the time left "
          "(NotteCreditsLow below 20% of the limit)."),
    Entry("notte_usage_limit_exceeded", "usage",
          "1: new work is refused with 402 unless a card is on file (NotteUsageLimitExceeded)."),
    Entry("notte_usage_sessions", "usage", "Sessions this period, as Notte counts them."),
    Entry("notte_usage_functions", "usage", "Function runs this period."),
    Entry("notte_usage_info", "usage", "The plan type and period; join on it to label panels."),
    Entry("notte_reaper_dry_run", "reaper",
          "1 until the policy file says `dry_run: false`; nothing is stopped while it is 1."),
    Entry("notte_reaper_stops_total", "reaper",
          '`increase()` by result: `dry_run` is what a live run would stop; `failed` growing '
          "while `stopped` does not is NotteReaperFailing."),
    Entry("notte_reaper_candidates", "reaper",
          "Sessions a policy matches now; after the rollout it should fall to 0 and stay near "
          "it (more than the limits allow waits for later polls)."),
    Entry("notte_reaper_saved_browser_seconds_total", "reaper",
          "`increase(...[1d]) / 3600` is browser hours the stops saved a day; times the "
          "browser price it is the dollars (cost dashboard)."),
)  # fmt: skip


@dataclass(frozen=True)
class Exposed:
    name: str
    type: str
    help: str
    labels: tuple[str, ...]


def exposed_metrics() -> dict[str, Exposed]:
    """Every notte metric a fully populated exporter serves, read from a real exposition."""
    from notte_exporter.daemon import Exporter  # noqa: PLC0415 - the daemon imports nothing from here

    clock = ManualClock()
    account = SimulatedAccount(clock=clock)
    key = "catalogue"
    account.start_session(browser_type="chrome")
    with SimulatorServer(account, api_key=key) as server, tempfile.TemporaryDirectory() as tmp:
        # A reaper in dry run, for its families: it serves them only when configured.
        policy = Path(tmp) / "reaper.yaml"
        policy.write_text("policies: [{name: idle-10m, idle_longer_than: 10m}]\n")
        settings = Settings(
            notte_api_url=server.url,
            notte_api_key=SecretStr(key),
            sessions_limit=10,
            reaper_config_file=policy,
        )
        exporter = Exporter(
            settings, ApiKey(SecretStr(key)), clock=clock.now, process_metrics=False
        )
        exporter.poll_once()
        exporter.close()
        return _families(exporter.registry)


def _families(registry: CollectorRegistry) -> dict[str, Exposed]:
    found = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = sorted(
            {label for sample in family.samples for label in sample.labels if label != "le"}
        )
        found[name] = Exposed(name, family.type, family.documentation, tuple(labels))
    return found


# The cost story: which question each cost metric answers, and what a leak costs. Kept next
# to the catalogue, and a test checks that every metric it names is one the exporter serves.
COST_QUESTIONS = (
    ("What did this month cost so far, and on what?",
     "`notte_usage_cost_dollars` by `category`; `notte_usage_total_cost_dollars`"),
    ("How fast is it spent (dollars an hour)?",
     "`deriv(notte_usage_total_cost_dollars[6h]) * 3600`"),
    ("When do the credits run out?",
     "`notte_usage_total_balance_dollars / deriv(notte_usage_total_cost_dollars[6h])` "
     "(seconds)"),
    ("Is the limit already hit (402s ahead)?", "`notte_usage_limit_exceeded == 1`"),
    ("How many browsers am I paying for right now?",
     "`sum(rate(notte_sessions_browser_seconds_total[5m]))`"),
    ("How much of the billed time did nobody use?",
     '`sum(increase(notte_sessions_idle_seconds_total{close_reason="idle_timeout"}[6h])) / '
     "sum(increase(notte_sessions_browser_seconds_total[6h]))`"),
    ("What did the leak cost, in dollars?",
     "the browser dollars of the window times that share: an estimate, since the API "
     "reports cost by category, not by session"),
    ("How much traffic is billed per GB?",
     '`sum(rate(notte_network_request_bytes_total{proxy="true"}[1h]) + '
     'rate(notte_network_response_bytes_total{proxy="true"}[1h])) * 3600 / 1e9` (GB an hour)'),
)  # fmt: skip

COST_INTRO = """\
## What the sessions cost

Notte bills browser time by how long a session stays open (idle or not) and built-in proxies
by the GB of their traffic, from dollar credits; when the credits of the period are used up
and no card is on file, new work is refused with 402 until the month resets. Each cost
metric answers one question (PromQL over one exporter; sum by `instance` for several):
"""

COST_NOTES = """\
The `notte_usage_*` values are the API's own and drop to near 0 when the month rolls over:
the exporter does not hide that, the bundled rules do (over a window that crosses the
rollover, `deriv()` means nothing). Browser and idle seconds come from the sessions the
exporter lists, without extra requests, and count only what it watched: a session whose end
cannot be learned (`close_reason="unknown"`) loses its last seconds.

**A leak's dollars, worked through.** A client that forgets to stop its sessions leaves each
one open, billed, until its idle timeout closes it: 500 leaked sessions a day with the
default 3-minute idle timeout are 25 browser hours a day that nobody used, on top of
whatever they did before. The simulator's leak account shows it end to end (`notte-exporter
--demo --demo.profile leak`; its rates, $0.10 a browser hour and $4 a proxied GB, are the
simulator's, not Notte's prices): over two hours about 13 browsers are open on average
(`rate(notte_sessions_browser_seconds_total[2h])`), and 40% of their browser seconds are
idle time of sessions closed by idle timeout. Of the $2.57 of browser time billed in those
two hours, about $1.02 paid for browsers nobody used: $12 a day, $370 a month, from a plan
of $30 whose balance is gone within hours.
"""


ACCOUNTS_AND_KEYS = """\
## Accounts and keys (`--config.file`)

The tables above show a single account (no `--config.file`): no series carries `account` or
`key`. With `--config.file`, every Notte series carries `account`, the `name` of its account
in the file. `notte_sessions_active` and the counters of starts, ends, request and response
bytes, browser seconds and idle seconds also carry `key`: the `name` of the named key whose
`GET /sessions?only_current_token=true` listing holds the session, or `other` when none does
(always `other` for an account without `keys`). A session keeps its key for life, so the sum
over `key` of each of these families is exactly the account's total; the duration histogram
and the other gauges carry no `key`. `notte_key_up{account, key}` is 1 while a named key's
last listing worked and 0 when it failed (a revoked key answers 401): the account's poll
still succeeds, and the sessions that key would have claimed count as `other` until it works
again. Then the live ones move to it; what was counted under `other` stays there.

A session that starts and ends between two polls is never listed live: the poll meets it
ended, in the account's history, and asks the named keys' recent history
(`GET /sessions?only_active=false&only_current_token=true`) which of them started it before
counting its start and end under that key. A key whose history listing fails (a revoked key)
says `notte_key_up 0`, and its short sessions count as `other`; the sums stay exact.

What a poll of an account costs, in requests: its listing and history as without keys (with
the account key), plus:

- one listing of each named key's live sessions (one request per 100 of them) when the
  account's listing holds a session never seen before, or one that waits for a failed key
  (then only the failed keys are listed);
- one listing of each named key's recent history when the account's history holds a session
  that began and ended since the previous poll: newest first, only the pages back to the
  oldest such session (usually one), at most `--sessions.lookup-budget` and `--notte.max-pages`
  pages, in the order of the file, stopping once the keys listed claimed every such session.

A poll with nothing new makes no request more than a single account does. The first poll
lists every named key's live sessions *before* the account's listing (within half of the
poll's budget), so that `notte_key_up` is known at once and the sessions the keys hold are
counted as the listing reads them; the sessions no named key holds are listed again by each
key at the end of that poll, as new sessions are at every poll.

Limits: a poll holds the sessions never seen before that the keys have not claimed yet
(at the first poll, those of no named key; later, only the new ones) until the keys are
listed, and the sessions it first meets ended until their keys are known (at most the
history pages it scanned), which a single account never does. With 10,000 live sessions, a
quarter of them of no named key, the first poll of an account with three named keys peaks
at 60 MB resident against a single account's 53 MB (`--once`). A short
session counts only once the account's history scan finds it, as without keys: when a scan
fails, the next poll's scan finds what it missed, except, on a busy account, what is no
longer on its first page.
"""


def cost_story() -> str:
    rows = [f"| {question} | {query} |" for question, query in COST_QUESTIONS]
    return "\n".join([COST_INTRO, "| Question | Metric and query |", "|---|---|", *rows, ""]) + (
        "\n" + COST_NOTES
    )


def render_markdown() -> str:
    exposed = exposed_metrics()
    lines = [
        "# Metrics reference",
        "",
        "<!-- Generated by `python -m mixin.catalogue`; do not edit by hand. -->",
        "",
        "Every metric notte-exporter serves, its type, labels and meaning, and how to alert",
        "on it. Snapshot gauges reflect the last successful poll; counters start at 0 when",
        "the exporter starts, with every known label set present from the first scrape.",
        "The exporter also serves the standard `process_*` and `python_*` metrics.",
        "",
    ]
    for group, title in GROUPS:
        lines += [f"## {title}", "", "| Metric | Type | Labels | Meaning | Alerting |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for entry in (e for e in ENTRIES if e.group == group):
            metric = exposed[entry.name]
            labels = ", ".join(f"`{label}`" for label in metric.labels) or "-"
            lines.append(
                f"| `{metric.name}` | {metric.type} | {labels} | {metric.help} | {entry.advice} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n" + ACCOUNTS_AND_KEYS + "\n" + cost_story()


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
