"""The published exposition: bytes rendered once per poll, per-process series per scrape."""

import gzip
import zlib
from collections.abc import Callable

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from notte_exporter.metrics.exposition import KEEP_FORMAT_POLLS, PublishedExposition

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
# What Prometheus 3 sends by default: a format variant the exposition has not rendered yet.
PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


@pytest.fixture
def gauge(registry: CollectorRegistry) -> Gauge:
    gauge = Gauge("notte_things", "Things.", registry=registry)
    gauge.set(1)
    return gauge


@pytest.fixture
def process() -> CollectorRegistry:
    process = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=process)
    return process


def values(body: bytes) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_scrapes_serve_the_last_published_poll(registry, gauge) -> None:
    exposition = PublishedExposition(registry)
    gauge.set(2)
    assert b"notte_things 1.0" in exposition.text()
    exposition.publish()
    assert b"notte_things 2.0" in exposition.text()


class Unrenderable(Collector):
    """A collector whose data cannot be rendered, as a number too large for a float."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> list[Metric]:
        return [GaugeMetricFamily("notte_odd", "Odd.", value=float(10**400))]


def test_a_publish_that_raises_leaves_every_format_as_last_published(registry, gauge) -> None:
    exposition = PublishedExposition(registry)
    exposition.text()  # asks for both formats: each publish renders them from now on
    exposition.reply("application/openmetrics-text")
    gauge.set(2)
    registry.register(Unrenderable())
    with pytest.raises(OverflowError):
        exposition.publish()
    assert b"notte_things 1.0" in exposition.text()
    # As published (a live render, say of a format variant, would read the registry again).
    assert exposition.reply_now("application/openmetrics-text") is not None
    assert b"notte_things 1.0" in exposition.reply("application/openmetrics-text").body


def test_per_process_series_are_rendered_at_each_scrape(registry, gauge, process) -> None:
    exposition = PublishedExposition(registry, process)
    body = exposition.text()
    assert b"notte_things 1.0" in body
    assert b"process_cpu_seconds_total" in body


def test_per_process_series_are_read_at_each_scrape(registry, gauge) -> None:
    process = CollectorRegistry(auto_describe=True)
    resident = Gauge("process_resident_memory_bytes", "Resident memory.", registry=process)
    exposition = PublishedExposition(registry, process)
    resident.set(1e6)
    assert values(exposition.text())["process_resident_memory_bytes"] == 1e6
    resident.set(2e6)  # no publish in between
    assert values(exposition.text())["process_resident_memory_bytes"] == 2e6


def test_openmetrics_ends_with_one_eof_after_the_per_process_series(
    registry, gauge, process
) -> None:
    body = PublishedExposition(registry, process).reply(OPENMETRICS).body
    assert body.count(b"# EOF") == 1
    assert body.endswith(b"# EOF\n")
    assert b"notte_things 1.0" in body


def test_openmetrics_without_per_process_series_still_ends_with_eof(registry, gauge) -> None:
    reply = PublishedExposition(registry).reply(OPENMETRICS)
    assert reply.content_type.startswith("application/openmetrics-text")
    assert reply.body.count(b"# EOF") == 1
    assert reply.body.endswith(b"# EOF\n")


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
def test_gzip_holds_the_same_body_as_plain(registry, gauge, process, accept) -> None:
    exposition = PublishedExposition(registry, process)
    plain = exposition.reply(accept)
    zipped = exposition.reply(accept, "gzip")
    assert zipped.content_encoding == "gzip"
    assert plain.content_encoding is None
    unzipped = gzip.decompress(zipped.body)
    # The process series move between the two scrapes; everything else is byte for byte.
    assert unzipped.split(b"# HELP process_")[0] == plain.body.split(b"# HELP process_")[0]
    assert unzipped.endswith(b"# EOF\n") == (accept is not None)


def test_the_gzip_of_a_poll_can_be_finished_many_times(registry, gauge, process) -> None:
    exposition = PublishedExposition(registry, process)
    for _ in range(3):
        assert b"notte_things 1.0" in gzip.decompress(exposition.reply(None, "gzip").body)


def test_a_name_filter_renders_only_the_named_families(registry, gauge, process) -> None:
    Gauge("notte_other", "Other.", registry=registry).set(5)
    exposition = PublishedExposition(registry, process)
    body = exposition.reply(query="name[]=notte_other&name[]=process_start_time_seconds").body
    assert set(values(body)) == {"notte_other", "process_start_time_seconds"}


def test_a_new_format_is_rendered_at_its_first_request_and_kept_for_the_poll(
    registry, gauge
) -> None:
    exposition = PublishedExposition(registry)
    assert exposition.reply_now(PROMETHEUS_3) is None  # left to a worker thread
    first = exposition.reply(PROMETHEUS_3)
    assert b"notte_things 1.0" in first.body
    assert first.body.count(b"# EOF") == 1
    assert exposition.reply_now(PROMETHEUS_3) == first


def test_a_publish_renders_the_formats_asked_for_lately(registry, gauge) -> None:
    exposition = PublishedExposition(registry)
    exposition.reply(PROMETHEUS_3)
    for _ in range(KEEP_FORMAT_POLLS):
        exposition.publish()
        assert exposition.reply_now(PROMETHEUS_3) is not None  # asked for at every poll


def test_a_format_not_asked_for_in_a_while_is_no_longer_rendered(registry, gauge) -> None:
    exposition = PublishedExposition(registry)
    exposition.text()
    exposition.reply("application/openmetrics-text")
    for _ in range(KEEP_FORMAT_POLLS):
        exposition.publish()
    assert exposition.reply_now("application/openmetrics-text") is not None
    exposition.publish()
    assert exposition.reply_now("application/openmetrics-text") is not None
    assert exposition.reply_now() is None
    # Still served, rendered for its request.
    assert b"notte_things 1.0" in exposition.reply().body


def test_a_publish_renders_no_format_before_one_is_asked_for(registry, gauge) -> None:
    exposition = PublishedExposition(registry)
    exposition.publish()
    assert exposition.reply_now() is None
    assert exposition.reply_now(OPENMETRICS) is None
    assert b"notte_things 1.0" in exposition.reply().body  # rendered for its request
    exposition.publish()
    assert exposition.reply_now() is not None  # asked for: published from now on


def test_a_new_format_variant_serves_the_published_poll(registry, gauge) -> None:
    exposition = PublishedExposition(registry)
    gauge.set(2)  # half-way through a poll: not published yet
    assert b"notte_things 1.0" in exposition.reply(PROMETHEUS_3).body


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
def test_a_name_filter_serves_the_published_poll(registry, gauge, process, accept) -> None:
    exposition = PublishedExposition(registry, process)
    gauge.set(2)  # half-way through a poll: not published yet
    reply = exposition.reply(accept, query="name[]=notte_things&name[]=process_max_fds")
    assert b"notte_things 1.0" in reply.body
    assert b"process_max_fds" in reply.body
    assert reply.body.count(b"# EOF") == (accept is not None)


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
@pytest.mark.parametrize("per_process", [True, False], ids=["per-process", "none"])
def test_gzip_is_one_member_holding_the_whole_body(
    registry, gauge, process, accept, per_process
) -> None:
    """Clients that read one gzip member and stop (httpx, urllib3) must get every byte."""
    exposition = PublishedExposition(registry, process if per_process else None)
    zipped = exposition.reply(accept, "gzip").body
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    unzipped = reader.decompress(zipped)
    assert reader.eof
    assert reader.unused_data == b""
    assert (
        unzipped.split(b"# HELP process_")[0]
        == exposition.reply(accept).body.split(b"# HELP process_")[0]
    )
    assert unzipped.endswith(b"# EOF\n") == (accept is not None)
    assert gzip.decompress(zipped) == unzipped  # length and CRC-32 of the whole checked


def test_a_publish_reads_the_registry_once_for_every_format(registry, gauge) -> None:
    class Counting(Collector):
        reads = 0

        def collect(self) -> list[Metric]:
            Counting.reads += 1
            return [GaugeMetricFamily("notte_reads", "Reads of the registry.", Counting.reads)]

    registry.register(Counting())
    published = PublishedExposition(registry)
    Counting.reads = 0
    published.publish()
    assert Counting.reads == 1
    # Both formats hold the value of that one reading.
    assert values(published.reply().body)["notte_reads"] == 1
    assert b"notte_reads 1.0" in published.reply("application/openmetrics-text").body


class Churning(Collector):
    """Families as a poll leaves them: some move, some stay, one comes and goes."""

    def __init__(self) -> None:
        self.sessions = {"chromium": 3.0, "firefox": 0.0}
        self.oldest: float | None = 1_700_000_000.0

    def collect(self) -> list[Metric]:
        active = GaugeMetricFamily("notte_active", "Live.", labels=["browser"])
        for browser, count in self.sessions.items():
            active.add_metric([browser], count)
        families: list[Metric] = [active]
        if self.oldest is not None:
            families.append(GaugeMetricFamily("notte_oldest", "Oldest.", value=self.oldest))
        return families


def test_every_publish_serves_what_prometheus_client_renders_for_the_registry(registry) -> None:
    """Poll after poll, whichever families changed, in every format and encoding."""
    closed = Counter("notte_closed", "Closed.", ["browser", "status"], registry=registry)
    for browser in ("chromium", "firefox"):
        for status in ("closed", "failed"):
            closed.labels(browser, status)  # known label sets, present at 0
    duration = Histogram("notte_duration_seconds", "Duration.", ["browser"], registry=registry)
    duration.labels("chromium")
    churning = Churning()
    registry.register(churning)
    exposition = PublishedExposition(registry)
    polls: list[Callable[[], None]] = [
        lambda: None,  # nothing changed
        lambda: closed.labels("chromium", "closed").inc(),
        lambda: duration.labels("chromium").observe(12.5),
        lambda: churning.sessions.update(firefox=-0.0),  # renders apart from 0.0
        lambda: setattr(churning, "oldest", None),  # a family disappears
        lambda: setattr(churning, "oldest", 1_700_000_060.0),  # and comes back, changed
        lambda: duration.labels("firefox").observe(3.0),  # a new label set
    ]
    openmetrics_generate, _ = choose_encoder(PROMETHEUS_3)
    for poll in polls:
        poll()
        exposition.publish()
        formats = {
            None: generate_latest(registry),
            OPENMETRICS: openmetrics.generate_latest(registry),
            PROMETHEUS_3: openmetrics_generate(registry),
        }
        for accept, expected in formats.items():
            assert exposition.reply(accept).body == expected
            assert gzip.decompress(exposition.reply(accept, "gzip").body) == expected
