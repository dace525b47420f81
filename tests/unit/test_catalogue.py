"""docs/metrics.md documents exactly what /metrics serves."""

from pathlib import Path

from notte_exporter.catalogue import ENTRIES, GROUPS, exposed_metrics, render_markdown

DOC = Path(__file__).parents[2] / "docs" / "metrics.md"


def test_every_served_metric_is_documented_and_every_documented_metric_served() -> None:
    assert {entry.name for entry in ENTRIES} == set(exposed_metrics())


def test_every_entry_belongs_to_a_section() -> None:
    assert {entry.group for entry in ENTRIES} <= {group for group, _ in GROUPS}


def test_every_metric_has_a_help_text_that_ends_a_sentence() -> None:
    for metric in exposed_metrics().values():
        assert metric.help.endswith("."), metric.name


def test_snapshot_gauges_say_they_reflect_the_last_successful_poll() -> None:
    for metric in exposed_metrics().values():
        if metric.name.startswith(("notte_sessions_active", "notte_session_")) and (
            metric.type == "gauge"
        ):
            assert "at the last successful poll" in metric.help, metric.name


def test_the_committed_reference_is_up_to_date() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/metrics.md is stale: run `python -m notte_exporter.catalogue > docs/metrics.md`"
    )
