"""Smoke test of the benchmark: ``python -m bench --quick`` runs and reports its structure.

No timing is asserted (the machines are shared and noisy); only that every phase ran, that
the report has the shape docs/benchmarks.md describes, and the one exact fact the benchmark
establishes: scrapes make no API request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
QUICK_SIZES = [50, 200]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    output = tmp_path_factory.mktemp("bench") / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(output.read_text(encoding="utf-8")), result.stdout


def test_report_has_every_phase(quick_run: tuple[dict[str, Any], str]) -> None:
    report, _ = quick_run
    assert set(report) == {"meta", "poll", "scrape", "server", "memory", "ended_cap", "floors"}
    assert report["meta"]["quick"] is True


def test_poll_phase_reports_ratios_for_every_size(quick_run: tuple[dict[str, Any], str]) -> None:
    rows = quick_run[0]["poll"]["rows"]
    assert [row["sessions"] for row in rows] == QUICK_SIZES
    for row in rows:
        assert set(row["seconds"]) == {
            "e2e",
            "sim_listing",
            "exporter",
            "raw",
            "decode",
            "parse",
            "track",
            "summarise",
        }
        assert row["per_session_ratio"].keys() == row["seconds"].keys()
    assert rows[0]["per_session_ratio"]["exporter"] == 1.0


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


def test_tables_are_printed(quick_run: tuple[dict[str, Any], str]) -> None:
    stdout = quick_run[1]
    for title in ("Poll cost", "Per-session cost", "Scrape cost", "Memory under churn"):
        assert title in stdout


def test_scrape_latency_is_reported_through_the_old_and_the_new_server(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    report, stdout = quick_run
    ways = [row["way"] for row in report["server"]["rows"]]
    assert ways == ["sequential_new_connection", "sequential_keep_alive", "concurrent_5"]
    for row in report["server"]["rows"]:
        assert row["old_ms"] > 0
        assert row["new_ms"] > 0
    assert "Scrape latency through the HTTP server" in stdout


def test_every_target_is_reported_next_to_its_floor(
    quick_run: tuple[dict[str, Any], str],
) -> None:
    report, text = quick_run
    floors = report["floors"]
    assert set(floors) == {"sessions", "scrape", "poll_cpu", "poll_parts", "poll_wall", "rss"}
    assert [row["encoding"] for row in floors["scrape"]["rows"]] == ["identity", "gzip"]
    for row in floors["scrape"]["rows"]:
        assert row["ratio"] > 0
        assert row["ratio_to_server"] > 0
    assert [row["transport"] for row in floors["poll_cpu"]["rows"]] == [
        "mock",
        "loopback",
        "loopback, concurrency 1",
    ]
    assert [row["part"] for row in floors["poll_parts"]["rows"]] == [
        "parse", "httpx (mock)", "httpx (loopback)", "track", "summarise", "publish"
    ]  # fmt: skip
    assert floors["poll_wall"]["concurrency"] == 4
    assert floors["rss"]["sessions"] == floors["sessions"]
    assert "Targets against their floors" in text
    assert "Where a poll's CPU goes" in text
