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

``LeanProcessCollector`` serves prometheus_client's process series with the same families
and the same values, read with fewer system calls: prometheus_client opens
``/proc/self/stat`` and ``/proc/self/limits`` through Python file objects at every scrape
(about 84 us per scrape inside the running server, against about 35 us for this one). Here
``stat`` is read with one ``os.read`` and parsed as prometheus_client parses it (memory),
the open-files limit comes from ``getrlimit`` (the number ``limits`` prints), and the
start time, which never changes, is read once. Open descriptors are still counted by
listing ``/proc/self/fd``. (Not ``statm``: its resident pages differ from ``stat``'s on
current kernels. CPU stays ``stat``'s too, though ``times()`` gives the same ticks.)
Anything unusual (no ``/proc``, an error, an unlimited limit) falls back to
prometheus_client's own reading.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Encoder = Callable[[Collector], bytes]

OPENMETRICS = "application/openmetrics-text"
EOF = b"# EOF\n"
# Families remembered per format: the three collectors yield about ten.
MAX_FAMILIES = 256


class Collected(Collector):
    """Metric families already read from a registry, to render more than once."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def without_eof(content_type: str, body: bytes) -> bytes:
    """A body that more will follow: OpenMetrics without its closing ``# EOF``."""
    if content_type.startswith(OPENMETRICS) and body.endswith(EOF):
        return body[: -len(EOF)]
    return body


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
                body = without_eof(content_type, encoder(Collected((metric,))))
                if len(self._rendered) >= MAX_FAMILIES:
                    self._rendered.clear()
                cached = (identity, body)
                self._rendered[key] = cached
            parts.append(cached[1])
        return b"".join(parts)


class LeanProcessCollector(ProcessCollector):
    """prometheus_client's ``ProcessCollector`` for this process, with fewer system calls."""

    def __init__(self) -> None:
        super().__init__(registry=None)
        self._start: Metric | None = None
        for metric in super().collect():
            if metric.name == f"{self._prefix}start_time_seconds":
                self._start = metric

    def collect(self) -> Iterable[Metric]:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if self._start is None or soft == resource.RLIM_INFINITY:
            return super().collect()  # limits would say "unlimited": read as they do
        try:
            parts = _read("/proc/self/stat").split(b")")[-1].split()
            open_fds = len(os.listdir("/proc/self/fd"))
        except OSError:
            return super().collect()
        prefix, ticks = self._prefix, self._ticks
        # Names, help, order and arithmetic as in prometheus_client's ProcessCollector.
        return [
            GaugeMetricFamily(
                f"{prefix}virtual_memory_bytes",
                "Virtual memory size in bytes.",
                value=float(parts[20]),
            ),
            GaugeMetricFamily(
                f"{prefix}resident_memory_bytes",
                "Resident memory size in bytes.",
                value=float(parts[21]) * self._pagesize,
            ),
            self._start,
            CounterMetricFamily(
                f"{prefix}cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                value=float(parts[11]) / ticks + float(parts[12]) / ticks,
            ),
            GaugeMetricFamily(
                f"{prefix}open_fds", "Number of open file descriptors.", value=open_fds
            ),
            GaugeMetricFamily(
                f"{prefix}max_fds", "Maximum number of open file descriptors.", value=float(soft)
            ),
        ]


def _read(path: str) -> bytes:
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(descriptor, 4096):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)
