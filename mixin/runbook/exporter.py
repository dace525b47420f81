"""The runbook sections and threshold rows of the `notte-exporter` alerts, for docs/alerts.md."""

from __future__ import annotations

from mixin.config import Config, human_duration, percent


def exporter_threshold_rows(config: Config) -> list[tuple[str, str]]:
    c = config
    return [
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
            f"failed with 429 over {c.rate_limited_window} (at least {c.rate_limited_min_polls}), "
            f"for {c.rate_limited_for}; or < "
            f"{percent(c.rate_limit_budget_low_share)} of the budget left for "
            f"{c.rate_limit_budget_for}",
        ),
    ]


def exporter_sections(config: Config) -> dict[str, str]:
    c = config
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
  {human_duration(c.rate_limited_window)} failed on HTTP 429 after the exporter's retries,
  at least {c.rate_limited_min_polls} of them, so that one stray 429 does not page
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
    }
