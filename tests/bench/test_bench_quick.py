"""Smoke test of the benchmark: ``python -m bench --quick --breakdown`` runs and reports.

No timing is asserted (the machines are shared and noisy); only that every phase ran, that
the report has the shape docs/benchmarks.md describes, that every guard is reported next to
its floor with the issue's target, and the one exact fact the benchmark establishes: scrapes
make no API request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import floors

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
QUICK_SIZES = [50, 200]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    output = tmp_path_factory.mktemp("bench") / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--breakdown", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(output.read_text(encoding="utf-8")), result.stdout


def test_report_has_every_phase_and_no_comparison_with_a_removed_server(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    report, _ = quick_run
    assert set(report) == {
        "meta", "poll", "scrape", "memory", "ended_cap", "floors", "breakdown"
    }  # fmt: skip
    assert report["meta"]["plan"]["floor_sessions"] == 300
    assert len(report["meta"]["load_average"]) == 3


def test_poll_phase_reports_ratios_for_every_size(quick_run: tuple[dict[str, Any], str]) -> None:
    rows = quick_run[0]["poll"]["rows"]
    assert [row["sessions"] for row in rows] == QUICK_SIZES
    for row in rows:
        assert set(row["seconds"]) == {"exporter", "raw"}
        assert row["per_session_ratio"].keys() == row["seconds"].keys()
    assert rows[0]["per_session_ratio"]["exporter"] == 1.0
    assert rows[1]["exporter_marginal_ratio"] is not None


def test_scrape_phase_covers_an_empty_account(quick_run: tuple[dict[str, Any], str]) -> None:
    rows = quick_run[0]["scrape"]["rows"]
    assert [row["sessions"] for row in rows] == [0, *QUICK_SIZES]
    assert rows[0]["ratio"] == 1.0


def test_detail_series_stay_within_the_detail_limit(quick_run: tuple[dict[str, Any], str]) -> None:
    # Three detail families (info, created, last accessed) of at most 20 sessions each.
    for row in quick_run[0]["scrape"]["rows"]:
        assert row["detail_series"] <= 3 * 20


def test_scrapes_make_no_api_request(quick_run: tuple[dict[str, Any], str]) -> None:
    http = quick_run[0]["scrape"]["http"]
    assert http["scrapes"] > 0
    assert http["api_requests_of_first_poll"] > 0
    assert http["api_requests_during_scrapes"] == 0


def test_memory_phase_samples_the_tracker(quick_run: tuple[dict[str, Any], str]) -> None:
    memory = quick_run[0]["memory"]
    assert len(memory["rows"]) >= 2
    assert memory["sessions_started"] == memory["polls"] * memory["churn_per_poll"]
    assert {"memory_ratio", "sessions_ratio"} <= set(memory["summary"])


def test_ended_cap_holds(quick_run: tuple[dict[str, Any], str]) -> None:
    cap = quick_run[0]["ended_cap"]
    assert max(row["ended_remembered"] for row in cap["rows"]) == cap["max_ended"]


def test_the_guards_hold_the_issues_targets() -> None:
    assert floors.SCRAPE_TARGET == 2.5
    assert floors.POLL_CPU_TARGETS == {"mock": 2.0, "loopback": 4.0}
    assert floors.RSS_TARGET_MB == 60.0


def test_every_guard_is_reported_next_to_its_floor(quick_run: tuple[dict[str, Any], str]) -> None:
    report, text = quick_run
    guards = report["floors"]
    assert set(guards) == {"sessions", "measured_at", "scrape", "poll_cpu", "poll_wall", "rss"}
    assert [row["encoding"] for row in guards["scrape"]["rows"]] == ["identity", "gzip"]
    for row in guards["scrape"]["rows"]:
        assert row["ratio"] > 0
        assert row["target"] == floors.SCRAPE_TARGET
    assert [row["transport"] for row in guards["poll_cpu"]["rows"]] == ["mock", "loopback"]
    assert guards["poll_wall"]["concurrency"] == 4
    assert guards["rss"]["sessions"] == guards["sessions"]
    assert guards["rss"]["target_mb"] == floors.RSS_TARGET_MB
    assert "Targets against their floors" in text


def test_the_breakdown_says_where_each_guarded_cost_goes(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    report, text = quick_run
    breakdown = report["breakdown"]
    assert [row["part"] for row in breakdown["poll_parts"]["rows"]] == [
        "parse", "httpx (mock)", "httpx (loopback)", "track", "summarise", "publish"
    ]  # fmt: skip
    layers = {row["layer"] for row in breakdown["scrape_layers"]["rows"]}
    assert layers == {
        "floor", "server, constant bytes", "/metrics, no per-process series", "/metrics",
        "/healthz",
    }  # fmt: skip
    work = [row["work"] for row in breakdown["scrape_layers"]["scrape_work"]]
    assert work[0] == "render the per-process series"
    assert len(work) == 4
    memory = breakdown["rss_layers"]
    # Each row is rounded to 0.1 MB on its own.
    rounding = 0.05 * len(memory["rows"])
    assert abs(sum(row["mb"] for row in memory["rows"]) - memory["total_mb"]) <= rounding
    assert "Where a poll's CPU goes" in text
