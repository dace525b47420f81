"""Families rendered one by one: prometheus_client's bytes, rendered again only on change."""

import pytest
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
        self.values: list[float] = []

    def __call__(self, registry: Collector) -> bytes:
        for metric in registry.collect():
            self.rendered.append(metric.name)
            self.values.extend(sample.value for sample in metric.samples)
        return self._encoder(registry)


def gauge(name: str, *values: float, timestamp: float | None = None) -> Metric:
    family = GaugeMetricFamily(name, f"{name}.", labels=["browser"])
    for index, value in enumerate(values):
        family.add_metric([f"browser-{index}"], value, timestamp=timestamp)
    return family


def test_a_family_that_did_not_change_is_not_rendered_again() -> None:
    encoder = CountingEncoder()
    families = FamilyBytes(encoder.content_type, encoder)
    families.render(Collected([gauge("notte_a", 1), gauge("notte_b", 1)]))
    encoder.rendered.clear()
    body = families.render(Collected([gauge("notte_a", 1), gauge("notte_b", 2)]))
    assert "notte_a" not in encoder.rendered
    assert body == encoder(Collected([gauge("notte_a", 1), gauge("notte_b", 2)]))


@pytest.mark.parametrize("accept", ["", OPENMETRICS])
def test_once_values_have_changed_new_values_are_filled_in_without_rendering(accept) -> None:
    """Values that compare equal but print apart, and every special value, print right."""
    encoder = CountingEncoder(accept)
    families = FamilyBytes(encoder.content_type, encoder)
    families.render(Collected([gauge("notte_a", 0.0, 1, 2, 3, 4, 5)]))
    families.render(Collected([gauge("notte_a", 1.0, 1, 2, 3, 4, 5)]))  # makes its template
    encoder.rendered.clear()
    for values in [
        (-0.0, 1.0, 1234567.0, 1e-7, float("nan"), float("inf")),
        (0, True, -1e22, 2, 3, 4),
    ]:
        reading = Collected([gauge("notte_a", *values)])
        body = families.render(reading)
        assert encoder.rendered == []
        assert body == encoder(reading).removesuffix(b"# EOF\n")
        encoder.rendered.clear()


def test_a_family_that_changes_shape_every_time_is_rendered_without_a_template() -> None:
    """The oldest sessions, by id, change at every poll: a template would be thrown away."""
    encoder = CountingEncoder()
    families = FamilyBytes(encoder.content_type, encoder)
    for index in range(3):
        encoder.values.clear()
        reading = Collected([session_ids(f"session-{index}")])
        body = families.render(reading)
        assert encoder.values == [1.0]  # its own rendering only, no template's placeholders
        assert body == encoder(reading)


def session_ids(*ids: str) -> Metric:
    family = GaugeMetricFamily("notte_session_info", "Sessions.", labels=["session_id"])
    for session_id in ids:
        family.add_metric([session_id], 1.0)
    return family


def test_a_large_family_is_cut_into_its_template() -> None:
    """A thousand sessions' series (the most --sessions.detail-limit allows), values moved."""
    encoder = CountingEncoder()
    families = FamilyBytes(encoder.content_type, encoder)
    ids = [f"session-{index}" for index in range(1000)]
    created = GaugeMetricFamily("notte_created", "Created.", labels=["session_id"])
    moved = GaugeMetricFamily("notte_created", "Created.", labels=["session_id"])
    for index, session_id in enumerate(ids):
        created.add_metric([session_id], 1.7e9 + index)
        moved.add_metric([session_id], 1.7e9 - index)
    families.render(Collected([created]))
    assert families.render(Collected([moved])) == encoder(Collected([moved]))


def test_a_family_with_a_new_label_set_is_rendered_again() -> None:
    encoder = CountingEncoder()
    families = FamilyBytes(encoder.content_type, encoder)
    families.render(Collected([gauge("notte_a", 1)]))
    reading = Collected([gauge("notte_a", 1, 2)])
    assert families.render(reading) == encoder(reading)


def test_a_family_whose_labels_hold_a_placeholder_is_rendered_as_it_is() -> None:
    """A template is cut at texts found nowhere else: here one is in a label value."""
    encoder = CountingEncoder()
    families = FamilyBytes(encoder.content_type, encoder)
    tricky = GaugeMetricFamily("notte_a", "A.", labels=["value"])
    tricky.add_metric(["-1.0000001e-300"], 1.0)
    families.render(Collected([tricky]))
    tricky.samples[0] = tricky.samples[0]._replace(value=2.0)
    assert families.render(Collected([tricky])) == encoder(Collected([tricky]))


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
