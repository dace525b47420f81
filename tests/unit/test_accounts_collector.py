"""The union of the accounts' registries: account first on every sample, one family per name."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from notte_exporter.metrics.accounts import AccountsCollector


class BuildInfo:
    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily("notte_exporter_build_info", "")]

    def collect(self) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily("notte_exporter_build_info", "Build.", labels=["version"])
        family.add_metric(["1.0"], 1.0)
        return [family]


def account_registry() -> tuple[CollectorRegistry, Counter]:
    registry = CollectorRegistry(auto_describe=True)
    polls = Counter("notte_exporter_polls", "Polls.", registry=registry)
    Gauge("notte_up", "Up.", registry=registry).set(1)
    Histogram("notte_session_duration_seconds", "Lifetime.", ["browser_type"], buckets=(1.0,),
              registry=registry).labels(browser_type="chromium").observe(0.5)  # fmt: skip
    registry.register(BuildInfo())
    return registry, polls


def union_of(*names: str) -> tuple[CollectorRegistry, AccountsCollector, list[Counter]]:
    made = [account_registry() for _ in names]
    collector = AccountsCollector([(n, r) for n, (r, _) in zip(names, made, strict=True)])
    top = CollectorRegistry(auto_describe=True)
    top.register(collector)
    return top, collector, [polls for _, polls in made]


def test_every_sample_carries_its_account_first_and_each_family_comes_once() -> None:
    top, _, _ = union_of("prod", "staging")
    text = generate_latest(top).decode()
    families = list(text_string_to_metric_families(text))
    assert sorted(f.name for f in families) == sorted(
        ["notte_exporter_polls", "notte_up", "notte_session_duration_seconds",
         "notte_exporter_build_info"]
    )  # fmt: skip
    assert text.count("# TYPE notte_up gauge") == 1
    assert 'notte_up{account="prod"} 1.0' in text
    assert 'notte_session_duration_seconds_bucket{account="staging",browser_type="chromium"' in text


def test_the_build_info_is_served_once_without_account() -> None:
    top, _, _ = union_of("prod", "staging")
    [build] = [f for f in text_string_to_metric_families(generate_latest(top).decode())
               if f.name == "notte_exporter_build_info"]  # fmt: skip
    assert [s.labels for s in build.samples] == [{"version": "1.0"}]


def test_an_account_shows_what_it_had_when_last_read() -> None:
    top, collector, (prod_polls, staging_polls) = union_of("prod", "staging")
    prod_polls.inc()
    staging_polls.inc()
    collector.read("prod")
    assert top.get_sample_value("notte_exporter_polls_total", {"account": "prod"}) == 1
    # Staging's poll is not over until its own thread reads it.
    assert top.get_sample_value("notte_exporter_polls_total", {"account": "staging"}) == 0


def test_describe_names_every_family_of_every_account() -> None:
    _, collector, _ = union_of("prod", "staging")
    assert sorted(f.name for f in collector.describe()) == sorted(
        ["notte_exporter_polls", "notte_up", "notte_session_duration_seconds",
         "notte_exporter_build_info"]
    )  # fmt: skip


def test_the_account_label_passes_the_redaction_step() -> None:
    registry, _ = account_registry()
    collector = AccountsCollector([("prod", registry)], redact=lambda t: t.replace("prod", "<r>"))
    top = CollectorRegistry(auto_describe=True)
    top.register(collector)
    assert top.get_sample_value("notte_up", {"account": "<r>"}) == 1
