"""Families rendered one by one: prometheus_client's bytes, each family rendered only on change."""

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from notte_exporter.families import Collected, FamilyBytes

OPENMETRICS = "application/openmetrics-text"


class CountingEncoder:
    """prometheus_client's encoder for a format, counting the families it renders."""

    def __init__(self, accept: str = "") -> None:
        self._encoder, self.content_type = choose_encoder(accept)
        self.rendered: list[str] = []

    def __call__(self, registry: Collector) -> bytes:
        self.rendered.extend(metric.name for metric in registry.collect())
        return self._encoder(registry)


def gauge(name: str, value: float, timestamp: float | None = None) -> Metric:
    family = GaugeMetricFamily(name, f"{name}.", labels=["browser"])
    family.add_metric(["chromium"], value, timestamp=timestamp)
    return family


def test_only_the_families_that_changed_are_rendered_again() -> None:
    encoder = CountingEncoder()
    families = FamilyBytes(encoder.content_type, encoder)
    families.render(Collected([gauge("notte_a", 1), gauge("notte_b", 1)]))
    encoder.rendered.clear()
    body = families.render(Collected([gauge("notte_a", 1), gauge("notte_b", 2)]))
    assert encoder.rendered == ["notte_b"]
    assert body == encoder(Collected([gauge("notte_a", 1), gauge("notte_b", 2)]))


def test_a_family_that_is_gone_is_forgotten() -> None:
    """What is kept is bounded by the last render, however many families came and went."""
    encoder = CountingEncoder()
    families = FamilyBytes(encoder.content_type, encoder)
    families.render(Collected([gauge("notte_a", 1), gauge("notte_b", 1)]))
    families.render(Collected([gauge("notte_b", 1)]))
    encoder.rendered.clear()
    families.render(Collected([gauge("notte_a", 1), gauge("notte_b", 1)]))
    assert encoder.rendered == ["notte_a"]


def test_openmetrics_families_are_joined_without_their_eof() -> None:
    encoder = CountingEncoder(OPENMETRICS)
    families = FamilyBytes(encoder.content_type, encoder)
    reading = Collected([gauge("notte_a", 1), gauge("notte_b", 1)])
    assert families.render(reading) + b"# EOF\n" == encoder(reading)


def test_timestamps_equal_as_numbers_but_printed_apart_are_rendered_again() -> None:
    """OpenMetrics prints a sample's timestamp as it is: ``1`` and ``1.0`` differ."""
    encoder = CountingEncoder(OPENMETRICS)
    families = FamilyBytes(encoder.content_type, encoder)
    families.render(Collected([gauge("notte_a", 1, timestamp=1)]))
    reading = Collected([gauge("notte_a", 1, timestamp=1.0)])
    assert families.render(reading) + b"# EOF\n" == encoder(reading)
