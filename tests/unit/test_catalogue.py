"""docs/metrics.md documents exactly what /metrics serves."""

import re
from pathlib import Path

from mixin.catalogue import (
    ENTRIES,
    GROUPS,
    cost_story,
    exposed_metrics,
    render_markdown,
)

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
        "docs/metrics.md is stale: run `python -m mixin.catalogue > docs/metrics.md`"
    )


def test_the_cost_story_names_only_metrics_the_exporter_serves() -> None:
    named = {name for name in re.findall(r"notte_[a-z_]+", cost_story()) if not name.endswith("_")}
    assert named
    assert named <= set(exposed_metrics()), named - set(exposed_metrics())
