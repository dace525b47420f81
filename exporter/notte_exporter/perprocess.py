"""The per-process series of a scrape, read at every scrape and rendered at little cost.

prometheus_client's process, platform and GC collectors are read for each scrape (they are
what changes between polls). Building their metric families and running them through the
encoder was most of the cost of serving the published exposition (~100 us of a scrape that
serves static bytes in ~300), and Prometheus, scraping every 15-60 s, sees new CPU, memory
and GC values at every scrape, so rendering them must be cheap even when every value moved.

So the collectors registered in a ``ProcessRegistry`` give their samples as bare values
(``ValueSource``: ``values()`` now, ``families(values)`` for the families ``collect()``
yields) and ``ProcessSeries`` renders them through a template made by the scrape's own
encoder (``families.Template``): once per format and collector, the encoder renders the
families with placeholder values that render as text found nowhere else, and the output is
cut at those texts. Each scrape then puts ``floatToGoString(value)`` between the pieces,
which is the text both encoders write for a sample's value (text format and OpenMetrics,
every escaping). The bytes served are therefore exactly what the encoder renders for the
registry; a template that cannot be cut cleanly is not used (the families are rendered as
they are).

Other collectors (tests, tools, a plain ``CollectorRegistry``) are rendered family by family
with the scrape's encoder, a family's bytes reused while it is unchanged and refilled
through its own template when only its values changed (``families.py``, which the
published exposition uses too); OpenMetrics' closing ``# EOF``
is left to the caller. Scrapes may run on several threads (the loop and the workers); a
cache entry is one object, replaced whole, so at worst two of them build the same one.

``LeanProcessCollector`` serves prometheus_client's process series with the same families
and the same values, read with fewer system calls: prometheus_client opens
``/proc/self/stat`` and ``/proc/self/limits`` through Python file objects at every scrape.
Here ``stat`` is kept open, read again from its start with one ``os.pread`` (instead of
open, two reads, close: the ``/proc`` reads are most of what the per-process series cost
inside the running server, where they run with cold caches, ~20 us each) and parsed as
prometheus_client parses it (memory); the open-files limit comes from ``getrlimit`` (the
number ``limits`` prints), and the start time, which never changes, is read once. Open
descriptors are counted with one ``stat`` of ``/proc/self/fd`` where the kernel gives their
number as its size (``open_descriptors``), else by listing it. (Not ``statm``: its resident
pages differ from ``stat``'s on current kernels. CPU stays ``stat``'s too, though
``times()`` gives the same ticks.) Anything unusual (no ``/proc``, an error, an unlimited
limit, a forked child) falls back to prometheus_client's own reading. ``LeanGCCollector`` is
prometheus_client's GC collector (the same three families from ``gc.get_stats()``) and
``ReadOnce`` serves a collector whose families never change (the platform's) as read once.
"""

from __future__ import annotations

import gc
import os
import resource
import weakref
from collections.abc import Iterable, Sequence
from contextlib import suppress
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .families import Collected, Encoder, FamilyBytes, Template, without_eof

# Templates (and family caches) remembered, each per format and collector: the three
# collectors with the formats the exposition serves make a few dozen.
MAX_FAMILIES = 256
# /proc/self/stat is one line of ~300 bytes; a read that fills this was cut short.
_STAT_MAX = 4096
_FDS = "/proc/self/fd"


@runtime_checkable
class ValueSource(Protocol):
    """A collector whose samples can be read as bare values, in the order it yields them."""

    def collect(self) -> Iterable[Metric]: ...

    def values(self) -> Sequence[float] | None:
        """Every sample's value now, in ``collect()``'s order; None: ask ``collect()``."""

    def families(self, values: Sequence[float]) -> list[Metric]:
        """The families ``collect()`` yields when its samples have these values."""


class ProcessRegistry(CollectorRegistry):
    """A registry that keeps its collectors in order, for ``ProcessSeries`` to read apart.

    Each comes with itself as a ``ValueSource`` when it is one (checked once, here: the
    check is too slow for every scrape).
    """

    def __init__(self, auto_describe: bool = True) -> None:
        super().__init__(auto_describe=auto_describe)
        self.sources: list[tuple[Collector, ValueSource | None]] = []

    def register(self, collector: Collector) -> None:
        super().register(collector)
        source = collector if isinstance(collector, ValueSource) else None
        self.sources.append((collector, source))

    def unregister(self, collector: Collector) -> None:
        super().unregister(collector)
        self.sources = [entry for entry in self.sources if entry[0] is not collector]


class ProcessSeries:
    """Renders ``registry`` per scrape: by template where it can, else family by family."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._rendered: dict[tuple[str, Collector | None], FamilyBytes] = {}
        self._templates: dict[tuple[str, ValueSource, int], Template | None] = {}

    def render(self, content_type: str, encoder: Encoder) -> bytes:
        """What ``encoder(registry)`` renders now, without OpenMetrics' ``# EOF``."""
        registry = self._registry
        if not isinstance(registry, ProcessRegistry):
            return self._families(None, registry.collect(), content_type, encoder)
        parts = []
        for collector, source in registry.sources:
            values = None if source is None else source.values()
            if source is None or values is None:
                parts.append(self._families(collector, collector.collect(), content_type, encoder))
                continue
            template = self._template(source, len(values), content_type, encoder)
            if template is None:
                families = source.families(values)
                parts.append(self._families(collector, families, content_type, encoder))
            else:
                parts.append(template.fill(values))
        return b"".join(parts)

    def _template(
        self, source: ValueSource, count: int, content_type: str, encoder: Encoder
    ) -> Template | None:
        key = (content_type, source, count)
        if key in self._templates:
            return self._templates[key]
        template = Template.of(
            source.families, count, lambda c: without_eof(content_type, encoder(c))
        )
        if len(self._templates) >= MAX_FAMILIES:
            self._templates.clear()
        self._templates[key] = template
        return template

    def _families(
        self,
        collector: Collector | None,
        metrics: Iterable[Metric],
        content_type: str,
        encoder: Encoder,
    ) -> bytes:
        # One cache per collector: each keeps only the families of its own last render.
        key = (content_type, collector)
        families = self._rendered.get(key)
        if families is None:
            if len(self._rendered) >= MAX_FAMILIES:
                self._rendered.clear()
            families = self._rendered[key] = FamilyBytes(content_type, encoder)
        return families.render(Collected(list(metrics)))


class LeanProcessCollector(ProcessCollector):
    """prometheus_client's ``ProcessCollector`` for this process, with fewer system calls."""

    def __init__(self) -> None:
        super().__init__(registry=None)
        self._start: float | None = None
        for metric in super().collect():
            if metric.name == f"{self._prefix}start_time_seconds":
                self._start = metric.samples[0].value
        # /proc/self/stat stays open, read again from its start at each scrape: one system
        # call instead of four. It is one of this process's open descriptors, counted as
        # prometheus_client counts every other. A forked child (its pid differs) reads as
        # prometheus_client does: the descriptor shows its parent.
        self._opened_by = os.getpid()
        self._by_size = False
        with suppress(OSError):
            self._by_size = descriptors_by_size()
        self._stat: int | None = None
        with suppress(OSError):
            self._stat = os.open("/proc/self/stat", os.O_RDONLY | os.O_CLOEXEC)
            weakref.finalize(self, os.close, self._stat)

    def collect(self) -> Iterable[Metric]:
        values = self.values()
        if values is None:
            return super().collect()
        return self.families(values)

    def values(self) -> Sequence[float] | None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        stat = self._stat
        if self._start is None or soft == resource.RLIM_INFINITY or stat is None:
            return None  # limits would say "unlimited", or no stat: read as they do
        try:
            line = os.pread(stat, _STAT_MAX, 0)
            open_fds = open_descriptors(self._by_size)
        except OSError:
            return None
        if len(line) >= _STAT_MAX or os.getpid() != self._opened_by:
            return None
        parts = line.split(b")")[-1].split()
        ticks = self._ticks
        # Arithmetic as in prometheus_client's ProcessCollector.
        return (
            float(parts[20]),
            float(parts[21]) * self._pagesize,
            self._start,
            float(parts[11]) / ticks + float(parts[12]) / ticks,
            open_fds,
            float(soft),
        )

    def families(self, values: Sequence[float]) -> list[Metric]:
        virtual, resident, start, cpu, open_fds, max_fds = values
        prefix = self._prefix
        # Names, help and order as in prometheus_client's ProcessCollector.
        return [
            GaugeMetricFamily(
                f"{prefix}virtual_memory_bytes", "Virtual memory size in bytes.", value=virtual
            ),
            GaugeMetricFamily(
                f"{prefix}resident_memory_bytes", "Resident memory size in bytes.", value=resident
            ),
            GaugeMetricFamily(
                f"{prefix}start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                value=start,
            ),
            CounterMetricFamily(
                f"{prefix}cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                value=cpu,
            ),
            GaugeMetricFamily(
                f"{prefix}open_fds", "Number of open file descriptors.", value=open_fds
            ),
            GaugeMetricFamily(
                f"{prefix}max_fds", "Maximum number of open file descriptors.", value=max_fds
            ),
        ]


class LeanGCCollector(Collector):
    """prometheus_client's ``GCCollector``: the same families, values also read bare."""

    _FAMILIES = (
        ("python_gc_objects_collected", "Objects collected during gc", "collected"),
        ("python_gc_objects_uncollectable", "Uncollectable objects found during GC",
         "uncollectable"),
        ("python_gc_collections", "Number of times this generation was collected",
         "collections"),
    )  # fmt: skip

    def collect(self) -> Iterable[Metric]:
        return self.families(self.values())

    def values(self) -> Sequence[float]:
        stats = gc.get_stats()
        return [stat[key] for _, _, key in self._FAMILIES for stat in stats]

    def families(self, values: Sequence[float]) -> list[Metric]:
        generations = len(values) // len(self._FAMILIES)
        families: list[Metric] = []
        for index, (name, documentation, _) in enumerate(self._FAMILIES):
            family = CounterMetricFamily(name, documentation, labels=["generation"])
            for generation in range(generations):
                family.add_metric([str(generation)], values[index * generations + generation])
            families.append(family)
        return families


class ReadOnce(Collector):
    """A collector whose families never change (the platform's), read once."""

    def __init__(self, collector: Collector) -> None:
        self._families = list(collector.collect())

    def collect(self) -> Iterable[Metric]:
        return self._families

    def values(self) -> Sequence[float]:
        return ()

    def families(self, values: Sequence[float]) -> list[Metric]:
        return self._families


def descriptors_by_size() -> bool:
    """Whether the size of ``/proc/self/fd`` is the number of open descriptors.

    Linux 6.2 and later say so (older kernels give 0; other systems that mimic ``/proc``
    may give anything): checked against listings made just before and after.
    """
    for _ in range(3):
        before, size, after = len(os.listdir(_FDS)), os.stat(_FDS).st_size, len(os.listdir(_FDS))
        if before == after:
            return size + 1 == before
    return False


def open_descriptors(by_size: bool) -> int:
    """The open descriptors as prometheus_client counts them: ``/proc/self/fd``'s entries.

    Listed, they include the descriptor of the listing itself. Where the directory's size
    is their number (``descriptors_by_size``), one ``stat``, plus one for that listing,
    replaces the listing (open, two ``getdents``, close, and an entry made for each
    descriptor: ~22 us of server CPU a scrape inside the running server, against ~3).
    """
    if by_size:
        return os.stat(_FDS).st_size + 1
    return len(os.listdir(_FDS))
