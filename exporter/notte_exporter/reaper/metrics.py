"""The reaper's metrics, rendered from what it counted, registered only when it is configured.

Every policy's label sets are there from the start at 0 (every result of
``notte_reaper_stops_total``), so that rates and alerts work from the first scrape; a
policy removed by a reload keeps its counters. Policy names are the operator's, checked to
be ``[a-z0-9-]+``; they still pass the redaction step, like every label value from outside.

Exposition (abridged)::

    # HELP notte_reaper_dry_run Whether the reaper runs dry (1): it counts and logs ...
    # TYPE notte_reaper_dry_run gauge
    notte_reaper_dry_run 1.0
    # HELP notte_reaper_stops_total Sessions the reaper acted on, by policy and result ...
    # TYPE notte_reaper_stops_total counter
    notte_reaper_stops_total{policy="idle-10m",result="dry_run"} 3.0
    notte_reaper_stops_total{policy="idle-10m",result="stopped"} 0.0
    # HELP notte_reaper_candidates Live sessions each policy matched at the last ...
    # TYPE notte_reaper_candidates gauge
    notte_reaper_candidates{policy="idle-10m"} 2.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .reaper import RESULTS, ReaperCounts

FAMILIES = (
    "notte_reaper_dry_run",
    "notte_reaper_stops",
    "notte_reaper_candidates",
    "notte_reaper_saved_browser_seconds",
)


class ReaperCollector(Collector):
    def __init__(
        self, counts: Callable[[], ReaperCounts], *, redact: Callable[[str], str] = str
    ) -> None:
        self._counts = counts
        self._redact = redact

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(name, "") for name in FAMILIES]

    def collect(self) -> Iterator[Metric]:
        counts = self._counts()
        yield GaugeMetricFamily(
            "notte_reaper_dry_run",
            "Whether the reaper runs dry (1): it counts and logs the sessions it would stop "
            "and sends nothing; 0: it stops them.",
            value=1.0 if counts.dry_run else 0.0,
        )
        stops = CounterMetricFamily(
            "notte_reaper_stops",
            "Sessions the reaper acted on, by policy and result: stopped, dry_run (would have "
            "stopped), already_gone (404, or already stopped or closed), failed (tried again "
            "at the next poll).",
            labels=["policy", "result"],
        )
        saved = CounterMetricFamily(
            "notte_reaper_saved_browser_seconds",
            "Browser time the reaper's stops saved, by policy: for each stopped session, from "
            "the stop to when Notte would have closed it (its idle timeout or max duration, "
            "whichever came first).",
            labels=["policy"],
        )
        for name in counts.policies:
            label = self._redact(name)
            for result in RESULTS:
                stops.add_metric([label, result], counts.stops.get((name, result), 0.0))
            saved.add_metric([label], counts.saved_seconds.get(name, 0.0))
        yield stops
        yield saved
        candidates = GaugeMetricFamily(
            "notte_reaper_candidates",
            "Live sessions each policy matched at the last successful poll (excluded "
            "sessions and those already stopped left out).",
            labels=["policy"],
        )
        for name, count in counts.candidates.items():
            candidates.add_metric([self._redact(name)], float(count))
        yield candidates
