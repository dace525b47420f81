"""The "Notte exporter" dashboard: the health of notte-exporter itself.

Scrapes, polls, Notte API requests, and the rate-limit budget the exporter shares with the
user's own automation.
"""

from __future__ import annotations

from mixin.config import Config, duration_seconds
from mixin.dashboards.common import (
    PER_MINUTE,
    RATE,
    UP_MAPPINGS,
    bundle_dashboard,
    per_exporter,
    process_selector,
    quantiles,
    selector,
)
from mixin.grafana import Json, Panel, Target, row, stat, timeseries


def exporter_dashboard(config: Config) -> Json:
    s = selector(config)
    process = process_selector(config)
    panels: list[Panel] = [
        row("Health"),
        stat(
            "Scrape",
            "Whether Prometheus could scrape each selected exporter (up).",
            Target(f"up{{{process}}}", per_exporter(config)),
            mappings=UP_MAPPINGS,
            threshold_steps=((1, "green"),),
            base_color="red",
        ),
        stat(
            "Notte API",
            "Whether each exporter's last poll of the Notte API succeeded (notte_up).",
            Target(f"notte_up{{{s}}}", per_exporter(config)),
            mappings=UP_MAPPINGS,
            threshold_steps=((1, "green"),),
            base_color="red",
        ),
        stat(
            "Last successful poll",
            "Time since each exporter's last successful poll; NotteExporterStale fires after "
            f"{config.stale_after}.",
            Target(
                f"time() - notte_exporter_last_poll_success_timestamp_seconds{{{s}}}",
                per_exporter(config),
            ),
            unit="s",
            threshold_steps=((duration_seconds(config.stale_after), "red"),),
        ),
        stat(
            "Polls",
            "Polls per minute, all selected exporters together.",
            Target(f"sum(rate(notte_exporter_polls_total{{{s}}}[{RATE}])) * 60"),
            unit=PER_MINUTE,
        ),
        stat(
            "Invalid sessions skipped",
            "Malformed session items skipped in the selected time range.",
            Target(f"sum(increase(notte_exporter_invalid_sessions_total{{{s}}}[$__range]))"),
            threshold_steps=((1, "orange"),),
        ),
        stat(
            "Version",
            "Exporter and Python versions of each selected exporter.",
            Target(
                f"notte_exporter_build_info{{{process}}}",
                per_exporter(config, "{{version}} (Python {{python_version}}) "),
            ),
            text_mode="name",
            base_color="text",
        ),
        row("Polls"),
        timeseries(
            "Poll duration",
            "Duration of complete polls (all pages, with retries).",
            quantiles("notte_exporter_poll_duration_seconds_bucket", s),
            unit="s",
            width=8,
        ),
        timeseries(
            "Poll failures by reason",
            "Failed polls per minute by reason. A failed poll keeps the previous snapshot.",
            [
                Target(
                    f"sum by (reason) "
                    f"(rate(notte_exporter_poll_failures_total{{{s}}}[{RATE}])) * 60",
                    "{{reason}}",
                )
            ],
            unit=PER_MINUTE,
            width=8,
            stack=True,
        ),
        timeseries(
            "Scrape and poll status",
            "up: Prometheus scrapes the exporter; notte_up: the exporter's last poll worked.",
            [
                Target(f"up{{{process}}}", per_exporter(config, "up ")),
                Target(f"notte_up{{{s}}}", per_exporter(config, "notte_up ")),
            ],
            width=8,
            min_value=0,
        ),
        row("Notte API"),
        timeseries(
            "API requests by endpoint and code",
            "Requests per second to the Notte API; code `error` means no response.",
            [
                Target(
                    f"sum by (endpoint, code) (rate(notte_api_requests_total{{{s}}}[{RATE}]))",
                    "{{endpoint}} {{code}}",
                )
            ],
            unit="reqps",
            width=8,
            stack=True,
        ),
        timeseries(
            "API request duration",
            "Latency of single API requests by endpoint.",
            quantiles("notte_api_request_duration_seconds_bucket", s, "endpoint", " {{endpoint}}"),
            unit="s",
            width=8,
        ),
        timeseries(
            "API retries by endpoint",
            "Retries per minute of failed or rate-limited requests.",
            [
                Target(
                    f"sum by (endpoint) (rate(notte_api_retries_total{{{s}}}[{RATE}])) * 60",
                    "{{endpoint}}",
                )
            ],
            unit=PER_MINUTE,
            width=8,
        ),
        timeseries(
            "Rate-limit budget",
            "Each API key's rate limit and what is left of it, from the headers of the last "
            "response (empty when the API sends none). The budget is shared with your own "
            "automation.",
            [
                Target(
                    f"notte_api_rate_limit_remaining{{{s}}}", per_exporter(config, "remaining ")
                ),
                Target(f"notte_api_rate_limit_limit{{{s}}}", per_exporter(config, "limit ")),
            ],
            width=8,
        ),
        timeseries(
            "Rate-limit budget left",
            "Share of the rate-limit budget left; NotteApiRateLimited fires below "
            f"{config.rate_limit_budget_low_share:.0%}.",
            [
                Target(
                    f"notte_api_rate_limit_remaining{{{s}}} / notte_api_rate_limit_limit{{{s}}}",
                    per_exporter(config),
                )
            ],
            unit="percentunit",
            width=8,
            threshold_steps=((config.rate_limit_budget_low_share, "red"),),
        ),
        timeseries(
            "Time to rate-limit reset",
            "Seconds until the API's rate-limit window resets.",
            [
                Target(
                    f"notte_api_rate_limit_reset_timestamp_seconds{{{s}}} - time()",
                    per_exporter(config),
                )
            ],
            unit="s",
            width=8,
            min_value=None,
        ),
    ]
    return bundle_dashboard(
        config,
        "exporter",
        "Notte exporter",
        "Health of notte-exporter: scrapes, polls, Notte API requests and the rate-limit budget.",
        panels,
    )
