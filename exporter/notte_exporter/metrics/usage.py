"""The account's spend and credits as metrics, from what the usage watcher read last.

The last report that was read stays on ``/metrics`` when a later read fails (stale but
true); ``notte_usage_last_success_timestamp_seconds`` shows its age. The values are exposed
as the API reports them: when the month rolls over they drop to near 0, and the rules, not
the exporter, deal with that. Free text the API sends (plan, period) is a label value only
through ``labels.text_label``: redacted, on one line, bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from notte_exporter.labels import text_label
from notte_exporter.polling.usage import UsageState

CATEGORIES = ("browser", "proxy", "llm", "function")
SOURCES = ("subscription", "topup")


class UsageCollector(Collector):
    """Renders the usage state.

    Exposition (abridged)::

        # HELP notte_usage_up Whether the last read of GET /usage succeeded (1) or failed (0).
        # TYPE notte_usage_up gauge
        notte_usage_up 1.0
        # HELP notte_usage_cost_dollars Cost so far this billing period, by category, ...
        # TYPE notte_usage_cost_dollars gauge
        notte_usage_cost_dollars{category="browser"} 12.4
        notte_usage_cost_dollars{category="proxy"} 4.5
        # HELP notte_usage_info The plan and billing period of the last usage report; always 1.
        # TYPE notte_usage_info gauge
        notte_usage_info{period="May 2026",plan_type="pro"} 1.0
    """

    def __init__(
        self, state: Callable[[], UsageState], *, redact: Callable[[str], str] = str
    ) -> None:
        self._state = state
        # The one redaction step: the plan and period are free text the API fills.
        self._redact = redact

    def describe(self) -> list[Metric]:
        return []  # families come with the data; nothing to describe before a read

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        if state.up is not None:
            yield _gauge(
                "notte_usage_up",
                "Whether the last read of GET /usage succeeded (1) or failed (0); independent "
                "of notte_up.",
                1.0 if state.up else 0.0,
            )
        if state.last_success is not None:
            yield _gauge(
                "notte_usage_last_success_timestamp_seconds",
                "Unix time of the last successful read of GET /usage; the age of every "
                "notte_usage_* value.",
                state.last_success.timestamp(),
            )
        report = state.report
        if report is None:
            return
        yield _labelled(
            "notte_usage_cost_dollars",
            "Cost so far this billing period, by category, in US dollars, from GET /usage.",
            "category",
            zip(
                CATEGORIES,
                (
                    report.browser_usage_cost,
                    report.proxy_usage_cost,
                    report.llm_usage_cost,
                    report.function_usage_cost,
                ),
                strict=True,
            ),
        )
        yield _gauge(
            "notte_usage_total_cost_dollars",
            "Total cost so far this billing period in US dollars (total_cost of GET /usage).",
            report.total_cost,
        )
        yield _labelled(
            "notte_usage_limit_dollars",
            "Credits of the billing period in US dollars, by source (subscription or top-up).",
            "source",
            zip(
                SOURCES, (report.subscription_limit_amount, report.topup_limit_amount), strict=True
            ),
        )
        yield _labelled(
            "notte_usage_balance_dollars",
            "Credits left this billing period in US dollars, by source (subscription or top-up).",
            "source",
            zip(
                SOURCES,
                (report.subscription_balance_amount, report.topup_balance_amount),
                strict=True,
            ),
        )
        yield _gauge(
            "notte_usage_total_balance_dollars",
            "Credits left this billing period in US dollars (balance_amount of GET /usage).",
            report.balance_amount,
        )
        yield _gauge(
            "notte_usage_limit_exceeded",
            "Whether the usage limit is exceeded (1): without a card on file, new work is "
            "refused with 402 until the period resets.",
            1.0 if report.is_usage_limit_exceeded else 0.0,
        )
        yield _gauge(
            "notte_usage_sessions",
            "Sessions started this billing period, as GET /usage counts them.",
            float(report.session_count),
        )
        yield _gauge(
            "notte_usage_functions",
            "Function runs this billing period, as GET /usage counts them.",
            float(report.function_count),
        )
        info = GaugeMetricFamily(
            "notte_usage_info",
            "The plan and billing period of the last usage report; always 1.",
            labels=["plan_type", "period"],
        )
        info.add_metric(
            [text_label(report.plan_type, self._redact), text_label(report.period, self._redact)],
            1.0,
        )
        yield info


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _labelled(
    name: str, help_text: str, label: str, values: Iterable[tuple[str, float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=[label])
    for key, value in values:
        family.add_metric([key], value)
    return family
