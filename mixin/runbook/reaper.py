"""The runbook section and threshold row of the reaper's alert, for docs/alerts.md."""

from __future__ import annotations

from mixin.config import Config, human_duration, percent


def reaper_threshold_rows(config: Config) -> list[tuple[str, str]]:
    c = config
    return [
        (
            "NotteReaperFailing",
            f"> {percent(c.reaper_failing_share)} of the stops tried in "
            f"{c.reaper_failing_window} failed, at least {c.reaper_failing_min_failures} of "
            f"them, for {c.reaper_failing_for}",
        )
    ]


def reaper_sections(config: Config) -> dict[str, str]:
    c = config
    window = human_duration(c.reaper_failing_window)
    return {
        "NotteReaperFailing": f"""\
**Meaning.** The exporter's reaper (`--reaper.config.file`, docs/reaper.md) tried to stop
sessions past your policy, and more than {percent(c.reaper_failing_share)} of the stops it
tried in the last {window} failed (at least {c.reaper_failing_min_failures} of them), for
{human_duration(c.reaper_failing_for)}. A failed stop (429, 5xx, no answer, or an answer
that says the session is still live) is tried again at the next poll, within the limits
of the policy file; those sessions stay open and billed meanwhile. Stops that found the
session already gone are not failures.

**Check.** The exporter's log: one line per failure, `reaper could not stop session ...`,
with the HTTP status (`status=` field) and the API's words. The *Reaper* row of the *Notte
sessions* dashboard (stops by policy and result), and the *Reaper* section of the
exporter's status page (the last 20 actions). A 401 or 403 means the key may read
sessions but not stop them; 429 that the rate limit, shared with your automation, is
spent (see [NotteApiRateLimited](#notteapiratelimited)); 5xx that the Notte API fails.

**Act.** Use a key that may stop sessions, or leave more of the rate limit to the
exporter (a longer `--poll.interval`, lower `max_stops_per_poll`). While the API fails,
nothing needs doing: the reaper keeps trying at each poll. To stop acting at once, set
`dry_run: true` in the policy file (it is re-read within a second, no restart needed).""",
    }
