"""Per-process series: exactly what prometheus_client renders, each family re-rendered on change."""

import gc
import os
from collections.abc import Iterable, Sequence

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

from notte_exporter.perprocess import (
    LeanGCCollector,
    LeanProcessCollector,
    ProcessRegistry,
    ProcessSeries,
    ReadOnce,
    descriptors_by_size,
    open_descriptors,
)

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


class Settable(Collector):
    """A bare-value source whose values a test sets: labels, units and help to escape."""

    def __init__(self, values: list[float]) -> None:
        self.values_now: list[float] | None = values
        self.documentation = "Set\\ by a test,\nescaped."

    def collect(self) -> Iterable[Metric]:
        assert self.values_now is not None
        return self.families(self.values_now)

    def values(self) -> list[float] | None:
        return self.values_now

    def families(self, values: Sequence[float]) -> list[Metric]:
        gauge = GaugeMetricFamily("settable_level_bytes", self.documentation, unit="bytes")
        gauge.add_metric([], values[0])
        counter = CounterMetricFamily("settable_events", "Events.", labels=["kind", "path"])
        for index, value in enumerate(values[1:]):
            counter.add_metric([f"k{index}", 'a"b\\c\nd'], value)
        return [gauge, counter]


def process_registry(*collectors: Collector) -> ProcessRegistry:
    registry = ProcessRegistry()
    for collector in collectors:
        registry.register(collector)
    return registry


TRICKY = [-0.0, 0.0, float("nan"), float("inf"), float("-inf"), 1, 2**53 + 1, 1e21, 123456789.0,
          1.5e-300, -1.0000001e-300, 0.1 + 0.2]  # fmt: skip


@pytest.mark.parametrize("accept", ACCEPTS)
def test_a_templated_source_renders_what_prometheus_client_renders(accept) -> None:
    encoder, content_type = choose_encoder(accept)
    source = Settable([1.0, 2.0])
    registry = process_registry(source)
    series = ProcessSeries(registry)
    for values in ([1.0, 2.0], [3.5, 4.25], TRICKY, [7.0, *TRICKY[::-1]], [-0.0, 0.0]):
        source.values_now = values
        assert series.render(content_type, encoder) == rendered(registry, accept)


@pytest.mark.parametrize("accept", ACCEPTS)
def test_templated_and_other_collectors_render_in_registration_order(fixed, accept) -> None:
    encoder, content_type = choose_encoder(accept)
    registry = process_registry(Settable([1.0, 2.0]), fixed, ReadOnce(PLATFORM_COLLECTOR))
    series = ProcessSeries(registry)
    fixed.cpu = 9.5
    assert series.render(content_type, encoder) == rendered(registry, accept)


def test_a_rendering_that_cannot_be_cut_is_rendered_as_families() -> None:
    encoder, content_type = choose_encoder("")
    source = Settable([1.0, 2.0])
    # The help text holds the text of a placeholder: the template cannot tell them apart.
    source.documentation = "Looks like -1.0000001e-300 to a template."
    registry = process_registry(source)
    series = ProcessSeries(registry)
    for values in ([1.0, 2.0], [5.0, 6.0]):
        source.values_now = values
        assert series.render(content_type, encoder) == rendered(registry, "")


def test_a_source_without_values_now_is_collected() -> None:
    encoder, content_type = choose_encoder("")
    source = Settable([1.0, 2.0])
    registry = process_registry(source)
    series = ProcessSeries(registry)
    expected = rendered(registry, "")
    source.values_now = None
    source.collect = lambda: source.families([1.0, 2.0])  # type: ignore[method-assign]
    assert series.render(content_type, encoder) == expected


def test_an_unregistered_collector_is_no_longer_rendered(fixed) -> None:
    encoder, content_type = choose_encoder("")
    source = Settable([1.0, 2.0])
    registry = process_registry(source, fixed)
    registry.unregister(source)
    assert ProcessSeries(registry).render(content_type, encoder) == rendered(registry, "")


@pytest.fixture
def gc_still() -> Iterable[None]:
    """No collection runs meanwhile, so two reads of the GC counts agree."""
    gc.disable()
    yield
    gc.enable()


def test_the_lean_gc_collector_yields_prometheus_clients_families(gc_still) -> None:
    assert list(LeanGCCollector().collect()) == list(GC_COLLECTOR.collect())


def test_read_once_yields_the_platforms_families() -> None:
    assert list(ReadOnce(PLATFORM_COLLECTOR).collect()) == list(PLATFORM_COLLECTOR.collect())


def test_the_lean_process_collectors_families_are_its_values() -> None:
    collector = LeanProcessCollector()
    values = collector.values()
    assert values is not None
    assert [s.value for m in collector.families(values) for s in m.samples] == list(values)


@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_daemons_per_process_series_render_as_prometheus_client_would(gc_still, accept) -> None:
    encoder, content_type = choose_encoder(accept)
    ours = process_registry(LeanProcessCollector(), ReadOnce(PLATFORM_COLLECTOR), LeanGCCollector())
    theirs = CollectorRegistry(auto_describe=True)
    for collector in (ProcessCollector(registry=None), PLATFORM_COLLECTOR, GC_COLLECTOR):
        theirs.register(collector)
    series = ProcessSeries(ours)
    # CPU may tick between two reads: a read bracketed by two of theirs that agree.
    for _ in range(20):
        before = rendered(theirs, accept)
        read = series.render(content_type, encoder)
        if before == rendered(theirs, accept):
            break
    assert read == before


def test_the_kept_stat_descriptor_reads_what_the_process_spent_since() -> None:
    theirs, ours = ProcessCollector(registry=None), LeanProcessCollector()
    cpu = "process_cpu_seconds_total"
    first = sample_values(ours)[cpu]
    spent = first
    for _ in range(100_000):  # until a CPU tick (10 ms), bounded
        spent = sample_values(theirs)[cpu]
        if spent > first:
            break
    assert spent > first
    assert sample_values(ours)[cpu] >= spent


def test_a_forked_child_reads_as_prometheus_client_does() -> None:
    ours = LeanProcessCollector()
    ours._opened_by = -1  # as in a child: the kept descriptor shows the parent
    assert ours.values() is None
    names = [m.name for m in ours.collect()]
    assert names == [m.name for m in ProcessCollector(registry=None).collect()]


def test_the_kept_stat_descriptor_is_closed_with_its_collector() -> None:
    collector = LeanProcessCollector()
    descriptor = collector._stat
    assert descriptor is not None
    os.fstat(descriptor)
    del collector
    gc.collect()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(descriptor)


def listed() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("by_size", [True, False])
def test_open_descriptors_are_counted_as_prometheus_client_lists_them(by_size) -> None:
    if by_size and not descriptors_by_size():
        pytest.skip("this kernel gives no count as the size of /proc/self/fd (before 6.2)")
    # A count bracketed by two listings that agree (nothing else opens files meanwhile).
    for _ in range(20):
        before, counted, after = listed(), open_descriptors(by_size), listed()
        if before == after:
            break
    assert counted == before == after


def test_a_descriptor_opened_is_counted_at_once() -> None:
    by_size = descriptors_by_size()
    counted = open_descriptors(by_size)
    descriptor = os.open(os.devnull, os.O_RDONLY)
    try:
        assert open_descriptors(by_size) == counted + 1
    finally:
        os.close(descriptor)
    assert open_descriptors(by_size) == counted


@pytest.mark.parametrize("size", [0, 4096])
def test_a_size_of_proc_self_fd_that_is_not_the_count_is_not_used(monkeypatch, size) -> None:
    """Kernels before 6.2 give 0; something imitating /proc could give anything."""
    real_stat = os.stat

    def stat(path: str) -> os.stat_result:
        if path == "/proc/self/fd":
            return os.stat_result((0, 0, 0, 0, 0, 0, size, 0, 0, 0))
        return real_stat(path)

    monkeypatch.setattr(os, "stat", stat)
    assert not descriptors_by_size()
