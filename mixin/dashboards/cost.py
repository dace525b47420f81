"""The "Notte cost" dashboard: what the sessions cost, what leaks waste, when credits run out.

It keeps the invariants of every dashboard (mixin/dashboards/__init__.py): the same data
source, job, account and instance variables (multi-value, "All"), firing Notte alerts as
annotations, units on every panel, and raw series only, never the cost recording rules, so
it works wherever the exporter is scraped. The burn rate is computed as the recording rule computes
it (`burn_rate_expr`), so the dashboard and NotteSpendForecastOverLimit agree.

One exporter watches one account: dollars, hours and bytes add up over the selected
exporters; what belongs to one account (whether its limit is exceeded, its days of credit
left, its plan, whether its usage is readable) stays one series per exporter.
"""

from __future__ import annotations

from mixin.config import Config
from mixin.dashboards.common import RATE, UP_MAPPINGS, bundle_dashboard, per_exporter, selector
from mixin.grafana import Json, Panel, Target, row, stat, timeseries
from mixin.rules.cost import SECONDS_TO_MONTH_END, burn_rate_expr

DOLLARS = "currencyUSD"
EXCEEDED_MAPPINGS: list[Json] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "no", "color": "green", "index": 0},
            "1": {"text": "EXCEEDED", "color": "red", "index": 1},
        },
    }
]


def cost_dashboard(config: Config) -> Json:
    c = config
    s = selector(c)
    window = c.spend_rate_window
    waste_window = c.idle_waste_window
    spent = f"sum(notte_usage_total_cost_dollars{{{s}}})"
    balance = f"sum(notte_usage_total_balance_dollars{{{s}}})"
    limit = f"sum(notte_usage_limit_dollars{{{s}}})"
    # Dollars per hour; summed after the per-series slope, as the recording rule does.
    exporter_burn = burn_rate_expr(c, f"notte_usage_total_cost_dollars{{{s}}}")
    burn = f"sum({exporter_burn})"
    browser_cost = f'notte_usage_cost_dollars{{{s}, category="browser"}}'
    idle_waste = f'notte_sessions_idle_seconds_total{{{s}, close_reason="idle_timeout"}}'
    browser_seconds = f"notte_sessions_browser_seconds_total{{{s}}}"
    waste_share = (
        f"sum(increase({idle_waste}[{waste_window}]))\n/\n"
        f"sum(increase({browser_seconds}[{waste_window}]))"
    )
    # The estimates weigh each account's browser dollars by its own waste share, then add
    # the accounts up: a share pooled over accounts would weigh one account's dollars by
    # another's waste. An exporter in config mode serves several accounts, so the account
    # is part of what tells them apart.
    target = f"job, {c.instance_label}, {c.account_label}"
    exporter_share = (
        f"(sum by ({target}) (increase({idle_waste}[{waste_window}])) "
        f"/ (sum by ({target}) (increase({browser_seconds}[{waste_window}])) > 0))"
    )

    def estimated_waste(dollars: str) -> str:
        return f"sum(\n  sum by ({target}) ({dollars})\n  * on ({target}) {exporter_share}\n)"

    # Each account's price of a browser hour: its browser burn rate (dollars per hour) over
    # its open browsers (browser hours per hour), both over the burn rate's window.
    browser_hour_price = (
        f"(sum by ({target}) ({burn_rate_expr(c, browser_cost)})\n"
        f"  / (sum by ({target}) (rate({browser_seconds}[{window}])) > 0))"
    )
    reaper_saved = (
        f"sum(\n  sum by ({target}) "
        f"(increase(notte_reaper_saved_browser_seconds_total{{{s}}}[$__range])) / 3600\n"
        f"  * on ({target}) {browser_hour_price}\n)"
    )

    proxied = 'proxy="true"'
    panels: list[Panel] = [
        row("Credits"),
        stat(
            "Spend this period",
            "What the account spent this billing period (total_cost of GET /usage), all "
            "categories. Drops to near 0 when the month rolls over.",
            Target(spent),
            unit=DOLLARS,
        ),
        stat(
            "Credits left",
            "Credits left this period (balance_amount of GET /usage), subscription and top-up.",
            Target(balance),
            unit=DOLLARS,
        ),
        stat(
            "Credits left (share)",
            "Credits left as a share of the period's limit (subscription plus top-up), over "
            "the selected exporters. "
            f"NotteCreditsLow warns below {c.credits_low_warning_share:.0%} (where Notte emails "
            f"the owner) and is critical below {c.credits_low_critical_share:.0%}.",
            Target(f"{balance}\n/\n{limit}"),
            unit="percentunit",
            threshold_steps=(
                (c.credits_low_critical_share, "orange"),
                (c.credits_low_warning_share, "green"),
            ),
            base_color="red",
        ),
        stat(
            "Burn rate",
            f"Dollars spent per hour: the slope of the period's spend over the last {window}, "
            "never below 0 (a window holding the month rollover reads 0).",
            Target(burn),
            unit=DOLLARS,
        ),
        stat(
            "Days of credit left",
            f"Each account's credits left divided by its burn rate of the last {window}: when "
            "its credits run out if spending goes on like this. Empty while nothing is spent.",
            Target(
                f"notte_usage_total_balance_dollars{{{s}}}\n/\n({exporter_burn} * 24 > 0)",
                per_exporter(c),
            ),
            unit="d",
            threshold_steps=((3, "orange"), (7, "green")),
            base_color="red",
        ),
        stat(
            "Limit exceeded",
            "Whether Notte reports each account's usage limit exceeded: without a card on "
            "file, new sessions are refused with HTTP 402 until the period resets. "
            "NotteUsageLimitExceeded fires on it.",
            Target(f"notte_usage_limit_exceeded{{{s}}}", per_exporter(c)),
            mappings=EXCEEDED_MAPPINGS,
            threshold_steps=((1, "red"),),
        ),
        stat(
            "Plan and period",
            "The plan type and billing period of the last usage report (notte_usage_info).",
            Target(f"notte_usage_info{{{s}}}", per_exporter(c, "{{plan_type}} · {{period}}: ")),
            text_mode="name",
            base_color="text",
            width=8,
        ),
        stat(
            "Usage data",
            "Whether each exporter's last read of GET /usage succeeded (notte_usage_up). "
            "While it fails the cost values are those of the last successful read; "
            "NotteUsageUnavailable fires after "
            f"{c.usage_unavailable_for}.",
            Target(f"notte_usage_up{{{s}}}", per_exporter(c)),
            mappings=UP_MAPPINGS,
            threshold_steps=((1, "green"),),
            base_color="red",
        ),
        stat(
            "Usage data age",
            "Time since each exporter's last successful read of GET /usage (reads are "
            "--usage.interval apart).",
            Target(f"time() - notte_usage_last_success_timestamp_seconds{{{s}}}", per_exporter(c)),
            unit="s",
        ),
        stat(
            "Sessions this period",
            "Sessions this billing period as Notte counts them (all of the account's sessions, "
            "not only those the exporter watched).",
            Target(f"sum(notte_usage_sessions{{{s}}})"),
        ),
        stat(
            "Functions this period",
            "Function runs this billing period as Notte counts them.",
            Target(f"sum(notte_usage_functions{{{s}}})"),
        ),
        row("Spend"),
        timeseries(
            "Spend this period by category",
            "Month-to-date spend by category (browser time, proxies by the GB, LLM, functions), "
            "stacked. Drops to near 0 when the month rolls over.",
            [Target(f"sum by (category) (notte_usage_cost_dollars{{{s}}})", "{{category}}")],
            unit=DOLLARS,
            stack=True,
        ),
        timeseries(
            "Balance and limit",
            "The period's limit (subscription plus top-up), the credits left, and the credits "
            "left by source.",
            [
                Target(limit, "limit"),
                Target(balance, "credits left"),
                Target(
                    f"sum by (source) (notte_usage_balance_dollars{{{s}}})",
                    "credits left: {{source}}",
                ),
            ],
            unit=DOLLARS,
        ),
        timeseries(
            "Burn rate by category",
            f"Dollars per hour by category: the slope of each category's spend over the last "
            f"{window}, never below 0, stacked.",
            [
                Target(
                    f"sum by (category) ({burn_rate_expr(c, f'notte_usage_cost_dollars{{{s}}}')})",
                    "{{category}}",
                )
            ],
            unit=DOLLARS,
            stack=True,
        ),
        timeseries(
            "Forecast to the end of the month",
            "At each moment: spend so far plus the burn rate of the last "
            f"{window} times the time left until the end of the month (UTC), i.e. what the "
            "period would cost at that rate, against the limit. NotteSpendForecastOverLimit "
            "fires while an account's own forecast is above its own limit; here both are "
            "summed over the selected exporters.",
            [
                Target(
                    f"{spent}\n+ {burn} * {SECONDS_TO_MONTH_END} / 3600",
                    "forecast at month end",
                ),
                Target(spent, "spent"),
                Target(limit, "limit"),
            ],
            unit=DOLLARS,
        ),
        row("Browser time and idle waste"),
        timeseries(
            "Open browsers by browser type",
            "Browser hours billed per hour, i.e. browsers open at once, of the sessions the "
            "exporter watched (rate of notte_sessions_browser_seconds_total).",
            [
                Target(
                    "sum by (browser_type) "
                    f"(rate(notte_sessions_browser_seconds_total{{{s}}}[{RATE}]))",
                    "{{browser_type}}",
                )
            ],
            stack=True,
            width=8,
        ),
        timeseries(
            "Idle time by close reason",
            "Idle browsers: seconds per second that ended sessions were open after their last "
            'use, by close reason. close_reason="idle_timeout" is what leaked sessions were '
            "billed for doing nothing.",
            [
                Target(
                    "sum by (close_reason) "
                    f"(rate(notte_sessions_idle_seconds_total{{{s}}}[{RATE}]))",
                    "{{close_reason}}",
                )
            ],
            stack=True,
            width=8,
        ),
        timeseries(
            f"Idle waste share ({waste_window})",
            f"Of the browser seconds of the last {waste_window}, the share that was idle time "
            "of sessions closed by idle timeout. NotteIdleWasteHigh fires above "
            f"{c.idle_waste_share:.0%} (with at least {c.idle_waste_min_duration} of it); "
            "the dashed line is that threshold.",
            [Target(waste_share, "idle waste share")],
            unit="percentunit",
            threshold_steps=((c.idle_waste_share, "red"),),
            width=8,
        ),
        stat(
            "Browser hours (selected range)",
            "Browser hours of the sessions the exporter watched in the dashboard's time range, "
            "by browser type.",
            Target(
                "sum by (browser_type) "
                f"(increase(notte_sessions_browser_seconds_total{{{s}}}[$__range])) / 3600",
                "{{browser_type}}",
            ),
            unit="h",
            width=8,
            height=8,
        ),
        stat(
            "Idle waste this period (estimate)",
            "An estimate, not a bill: each account's browser cost this period times its idle "
            f"waste share of the last {waste_window}, added up over the selected exporters: "
            "what the period's browser time cost if it was wasted at the recent share.",
            Target(estimated_waste(browser_cost)),
            unit=DOLLARS,
            width=8,
            height=8,
        ),
        timeseries(
            "Idle waste per hour (estimate)",
            "An estimate: each account's browser burn rate (dollars per hour over the last "
            f"{window}) times its idle waste share of the last {waste_window}, added up over "
            "the selected exporters.",
            [
                Target(
                    estimated_waste(burn_rate_expr(c, browser_cost)),
                    "estimated idle waste per hour",
                )
            ],
            unit=DOLLARS,
            width=8,
        ),
        row("Reaper"),
        stat(
            "Browser hours saved by the reaper (selected range)",
            "For each session the reaper stopped in the dashboard's time range, the time from "
            "the stop to when Notte would have closed it itself (its idle timeout or max "
            "duration). Empty without a reaper (docs/reaper.md).",
            Target(
                f"sum(increase(notte_reaper_saved_browser_seconds_total{{{s}}}[$__range])) / 3600"
            ),
            unit="h",
            width=12,
        ),
        stat(
            "Saved by the reaper (estimate)",
            "An estimate: those browser hours, each account's at its own price of a browser "
            f"hour (its browser burn rate over its open browsers, last {window}), added up "
            "over the selected exporters.",
            Target(reaper_saved),
            unit=DOLLARS,
            width=12,
        ),
        row("Proxied traffic"),
        timeseries(
            "Proxied traffic",
            "Bytes per second through Notte's built-in proxies, which are billed per GB; "
            "traffic without a proxy is not billed by volume.",
            [
                Target(
                    f"sum(rate(notte_network_request_bytes_total{{{s}, {proxied}}}[{RATE}]))",
                    "proxied: sent",
                ),
                Target(
                    f"sum(rate(notte_network_response_bytes_total{{{s}, {proxied}}}[{RATE}]))",
                    "proxied: received",
                ),
                Target(
                    f'sum(rate(notte_network_request_bytes_total{{{s}, proxy="false"}}[{RATE}]))'
                    " + "
                    f'sum(rate(notte_network_response_bytes_total{{{s}, proxy="false"}}[{RATE}]))',
                    "not proxied (not billed per GB)",
                ),
            ],
            unit="Bps",
            width=12,
        ),
        stat(
            "Proxied traffic (selected range)",
            "Bytes sent and received through proxies in the dashboard's time range (decimal "
            "units: billing counts GB).",
            Target(
                f"sum(increase(notte_network_request_bytes_total{{{s}, {proxied}}}[$__range]))\n"
                "+\n"
                f"sum(increase(notte_network_response_bytes_total{{{s}, {proxied}}}[$__range]))"
            ),
            unit="decbytes",
            width=6,
            height=8,
        ),
        stat(
            "Proxy cost this period",
            "What the built-in proxies cost this billing period (proxy_usage_cost).",
            Target(f'sum(notte_usage_cost_dollars{{{s}, category="proxy"}})'),
            unit=DOLLARS,
            width=6,
            height=8,
        ),
    ]
    return bundle_dashboard(
        c,
        "cost",
        "Notte cost",
        "What the Notte sessions cost: spend and credits from GET /usage, the burn rate and a "
        "forecast to the end of the month, browser time, the idle waste of leaked sessions "
        "and proxied traffic, from notte-exporter.",
        panels,
    )
