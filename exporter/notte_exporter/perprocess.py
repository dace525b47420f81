"""The per-process series of a scrape, collected at every scrape, re-rendered only when changed.

prometheus_client's process, platform and GC collectors are collected for each scrape (they
are what changes between polls), but rendering them was most of the cost of serving the
published exposition: ~100 us per scrape, of which collecting (reading ``/proc``) is ~50. Most
families do not change from one scrape to the next (start time, file limits, the platform,
often the GC counts), so each family is rendered on its own by the scrape's encoder and the
bytes kept under what was rendered: its name, help, type, unit and every sample (values by
``repr``, so that ``-0.0`` and NaN are told apart). A family equal to the one rendered last
reuses those bytes; any difference renders it again.

The bytes served are therefore exactly what the encoder renders for the registry: both
encoders (text and OpenMetrics) render each family on its own and join the results, and
OpenMetrics' closing ``# EOF`` is left to the caller. Scrapes may run on several threads
(the loop and the workers); a cache entry is one tuple, replaced whole, so at worst two of
them render the same family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

Encoder = Callable[[Collector], bytes]

OPENMETRICS = "application/openmetrics-text"
EOF = b"# EOF\n"
# Families remembered per format: the three collectors yield about ten.
MAX_FAMILIES = 256


class _One(Collector):
    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> Iterable[Metric]:
        return (self._metric,)


def _identity(metric: Metric) -> tuple[Any, ...]:
    """Everything an encoder reads from a family, comparable with ``==``."""
    return (
        metric.name,
        metric.documentation,
        metric.type,
        metric.unit,
        tuple(
            (
                sample.name,
                tuple(sample.labels.items()),
                repr(sample.value),
                sample.timestamp,
                sample.exemplar,
                sample.native_histogram,
            )
            for sample in metric.samples
        ),
    )


class ProcessSeries:
    """Renders ``registry`` per scrape, reusing each family's bytes while it is unchanged."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._rendered: dict[tuple[str, str], tuple[tuple[Any, ...], bytes]] = {}

    def render(self, content_type: str, encoder: Encoder) -> bytes:
        """What ``encoder(registry)`` renders now, without OpenMetrics' ``# EOF``."""
        parts = []
        for metric in self._registry.collect():
            key = (content_type, metric.name)
            identity = _identity(metric)
            cached = self._rendered.get(key)
            if cached is None or cached[0] != identity:
                body = encoder(_One(metric))
                if content_type.startswith(OPENMETRICS) and body.endswith(EOF):
                    body = body[: -len(EOF)]
                if len(self._rendered) >= MAX_FAMILIES:
                    self._rendered.clear()
                cached = (identity, body)
                self._rendered[key] = cached
            parts.append(cached[1])
        return b"".join(parts)
