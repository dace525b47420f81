"""Per-process series: exactly what prometheus_client renders, each family re-rendered on change."""

from collections.abc import Iterable

import pytest
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from notte_exporter.perprocess import LeanProcessCollector, ProcessSeries

ACCEPTS = [
    "",
    "application/openmetrics-text",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
    "application/openmetrics-text;version=1.0.0;escaping=underscores",
]


class Fixed(Collector):
    """Families with values a test sets; the registry renders whatever they hold now."""

    def __init__(self) -> None:
        self.cpu = 1.5
        self.memory = 1e9
        self.collected = {"0": 10.0, "1": 2.0}

    def collect(self) -> Iterable[Metric]:
        cpu = CounterMetricFamily("fixed_cpu_seconds", "CPU\\ spent,\nall.", unit="seconds")
        cpu.add_metric([], self.cpu)
        yield cpu
        memory = GaugeMetricFamily("fixed_resident_memory_bytes", "Memory.")
        memory.add_metric([], self.memory)
        yield memory
        collected = CounterMetricFamily("fixed_gc_collected", "GC.", labels=["generation"])
        for generation, value in self.collected.items():
            collected.add_metric([generation], value)
        yield collected
        info = InfoMetricFamily("fixed_build", "Build.")
        info.add_metric([], {"version": 'a"b\\c'})
        yield info


@pytest.fixture
def fixed() -> Fixed:
    return Fixed()


@pytest.fixture
def registry(fixed) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(fixed)
    return registry


def rendered(registry: CollectorRegistry, accept: str) -> bytes:
    """What prometheus_client renders for the registry, without OpenMetrics' # EOF."""
    encoder, _ = choose_encoder(accept)
    return encoder(registry).removesuffix(b"# EOF\n")


@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_bytes_are_what_prometheus_client_renders(registry, accept) -> None:
    encoder, content_type = choose_encoder(accept)
    series = ProcessSeries(registry)
    assert series.render(content_type, encoder) == rendered(registry, accept)
    # The second time from the cache: still the same bytes.
    assert series.render(content_type, encoder) == rendered(registry, accept)


@pytest.mark.parametrize("accept", ACCEPTS)
def test_a_changed_value_is_rendered_again(registry, fixed, accept) -> None:
    encoder, content_type = choose_encoder(accept)
    series = ProcessSeries(registry)
    series.render(content_type, encoder)
    fixed.cpu, fixed.collected["1"] = 2.25, 3.0
    assert series.render(content_type, encoder) == rendered(registry, accept)


@pytest.mark.parametrize("value", [-0.0, float("nan"), float("inf"), 1])
def test_values_that_compare_equal_but_render_apart_are_rendered_again(
    registry, fixed, value
) -> None:
    encoder, content_type = choose_encoder("")
    series = ProcessSeries(registry)
    fixed.memory = 0.0 if value == 0 else 1.0
    series.render(content_type, encoder)
    fixed.memory = value
    assert series.render(content_type, encoder) == rendered(registry, "")


def test_formats_are_cached_apart(registry) -> None:
    series = ProcessSeries(registry)
    for accept in ACCEPTS * 2:
        encoder, content_type = choose_encoder(accept)
        assert series.render(content_type, encoder) == rendered(registry, accept)


@pytest.mark.parametrize("collector", [PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR])
def test_the_default_collectors_render_as_prometheus_client_would(collector) -> None:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    series = ProcessSeries(registry)
    for accept in ACCEPTS:
        encoder, content_type = choose_encoder(accept)
        series.render(content_type, encoder)
        ours = series.render(content_type, encoder)
        theirs = rendered(registry, accept)
        # Their values move between two reads (CPU, GC counts); the families and lines do not.
        assert [line.split(b" ")[0] for line in ours.splitlines()] == [
            line.split(b" ")[0] for line in theirs.splitlines()
        ]


def sample_values(collector: Collector) -> dict[str, float]:
    return {sample.name: sample.value for m in collector.collect() for sample in m.samples}


def test_the_lean_process_collector_has_prometheus_clients_families() -> None:
    def shape(collector: Collector) -> list[tuple[object, ...]]:
        return [
            (m.name, m.documentation, m.type, m.unit, [(s.name, s.labels) for s in m.samples])
            for m in collector.collect()
        ]

    assert shape(LeanProcessCollector()) == shape(ProcessCollector(registry=None))


def test_the_lean_process_collector_reads_prometheus_clients_values() -> None:
    theirs, ours = ProcessCollector(registry=None), LeanProcessCollector()
    # Memory and descriptors may move between two reads: compare a read bracketed by two of
    # theirs that agree (a few tries; nothing else runs in this process meanwhile).
    for _ in range(20):
        before, read, after = sample_values(theirs), sample_values(ours), sample_values(theirs)
        steady = ["process_virtual_memory_bytes", "process_resident_memory_bytes",
                  "process_open_fds"]  # fmt: skip
        if all(before[name] == after[name] for name in steady):
            break
    for name in [*steady, "process_start_time_seconds", "process_max_fds"]:
        assert read[name] == before[name] == after[name], name
    cpu = "process_cpu_seconds_total"
    assert before[cpu] <= read[cpu] <= after[cpu]


def test_the_lean_process_collector_renders_as_prometheus_client_would() -> None:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(LeanProcessCollector())
    text = rendered(registry, "")
    assert b"# TYPE process_cpu_seconds_total counter" in text
    assert b"process_open_fds " in text
