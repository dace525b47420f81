"""The `notte-exporter` alert group: the exporter itself, its polls and the API's rate limit.

Every other group reads the exporter's series: while NotteExporterDown or NotteExporterStale
fires, those alerts are blind or judge old data, and the descriptions say so.
"""

from __future__ import annotations

from mixin.alert import Alert, target_args, target_filter, target_name
from mixin.config import Config


def _failure_reasons(config: Config) -> str:
    """Template text listing why polls failed recently, so the page says what to fix."""
    query = (
        "sum by (reason) (increase(notte_exporter_poll_failures_total"
        f"{{{target_filter(config)}}}[{config.value('polls_failing_for')}])) > 0"
    )
    return (
        f"{{{{ with printf `{query}` {target_args(config)} | query }}}}"
        f"Failed polls in the last {config.value('polls_failing_for', 'human')} by reason: "
        '{{ range $i, $s := sortByLabel "reason" . }}{{ if $i }}, {{ end }}'
        '{{ $s.Labels.reason }} {{ $s.Value | printf "%.0f" }}{{ end }}. '
        "The exporter's log says more."
        "{{ else }}notte_exporter_poll_failures_total{reason} and the exporter's log say why."
        "{{ end }}"
    )


def exporter_alerts(config: Config) -> list[Alert]:
    """Group `notte-exporter`: the exporter itself, its polls and the API's rate limit."""
    c = config
    inst = target_name(c)
    result: list[Alert] = []

    result.append(
        Alert(
            name="NotteExporterDown",
            expr=f"{c.metric('up')} == 0",
            for_=c.value("exporter_down_for"),
            severity="critical",
            labels={"cause": "scrape_failed"},
            summary="Prometheus cannot scrape notte-exporter.",
            description=(
                f"Prometheus has failed to scrape {inst} (job {{{{ $labels.job }}}}) for more "
                f"than {c.value('exporter_down_for', 'human')}: there are no Notte session "
                "metrics from it and no session alert can fire."
            ),
        )
    )
    result.append(
        Alert(
            name="NotteExporterDown",
            expr=f"absent({c.metric('up')})",
            for_=c.value("exporter_down_for"),
            severity="critical",
            labels={"cause": "target_missing"},
            summary="Prometheus has no notte-exporter target.",
            description=(
                f"For more than {c.value('exporter_down_for', 'human')} Prometheus has had no "
                f"target whose series match {{{c.selector}}}: the exporter is not deployed or "
                "service discovery (scrape config, ServiceMonitor) does not find it. "
                "No Notte session alert can fire."
            ),
        )
    )
    result.append(
        Alert(
            name="NotteExporterDown",
            expr=f"{c.metric('notte_up')} == 0",
            for_=c.value("polls_failing_for"),
            severity="critical",
            labels={"cause": "polls_failing"},
            summary="notte-exporter cannot poll the Notte API.",
            description=(
                f"Every poll of the Notte API by {inst} has failed for more than "
                f"{c.value('polls_failing_for', 'human')} (notte_up is 0): its session metrics "
                "are frozen at the last successful poll and session alerts are blind. "
                + _failure_reasons(c)
            ),
        )
    )
    result.append(
        Alert(
            name="NotteExporterStale",
            expr=(
                f"(\n  time() - {c.metric('notte_exporter_last_poll_success_timestamp_seconds')}"
                f" > {c.value('stale_after', 'seconds')}\n)\n"
                f"unless\n{c.metric('notte_up')} == 0\n"
            ),
            for_=c.value("stale_for"),
            severity="warning",
            summary="notte-exporter serves old data.",
            description=(
                f"The last successful poll of the Notte API by {inst} was "
                "{{ $value | humanizeDuration }} ago (threshold "
                f"{c.value('stale_after', 'human')}) although no poll reports a failure: the "
                "poll loop is stuck or much slower than --poll.interval. Session metrics and "
                "alerts are based on old data."
            ),
        )
    )
    failures = c.metric("notte_exporter_poll_failures_total", 'reason="rate_limited"')
    polls = c.metric("notte_exporter_polls_total")
    rl_window = c.value("rate_limited_window")
    result.append(
        Alert(
            name="NotteApiRateLimited",
            expr=(
                f"sum without (reason) (increase({failures}[{rl_window}]))\n"
                f"/\n(increase({polls}[{rl_window}]) > 0)\n"
                f"> {c.value('rate_limited_poll_share', 'number')}\n"
                f"and\nsum without (reason) (increase({failures}[{rl_window}]))"
                f" >= {c.value('rate_limited_min_polls', 'int')}\n"
            ),
            for_=c.value("rate_limited_for"),
            severity="warning",
            labels={"cause": "polls_rate_limited"},
            summary="The Notte API rate-limits notte-exporter's polls.",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the polls by {inst} in the last "
                f"{c.value('rate_limited_window', 'human')} failed because the Notte API "
                f"answered 429 (threshold {c.value('rate_limited_poll_share', 'percent')} and "
                f"{c.value('rate_limited_min_polls', 'int')} polls): the "
                "API key's rate limit, shared with your own automation, is exhausted."
            ),
        )
    )
    result.append(
        Alert(
            name="NotteApiRateLimited",
            expr=(
                f"{c.metric('notte_api_rate_limit_remaining')}\n"
                f"/\n({c.metric('notte_api_rate_limit_limit')} > 0)\n"
                f"< {c.value('rate_limit_budget_low_share', 'number')}\n"
            ),
            for_=c.value("rate_limit_budget_for"),
            severity="warning",
            labels={"cause": "budget_low"},
            summary="The Notte API key's rate-limit budget runs low.",
            description=(
                f"Only {{{{ $value | humanizePercentage }}}} of the API key's rate-limit budget "
                f"was left after the polls by {inst} for "
                f"{c.value('rate_limit_budget_for', 'human')} (threshold "
                f"{c.value('rate_limit_budget_low_share', 'percent')}): the next requests of the "
                "exporter or of your own automation will be refused with 429."
            ),
        )
    )
    return result
