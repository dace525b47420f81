"""The soak's parts that need no month: what a scrape keeps, how scrapes are filed, and how
a leak's page is judged against the moment the exporter's series showed the leak."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from soak.alerts import Firing
from soak.report import late_leaks, leak_visible
from soak.run import EndsCounted, RunResult
from soak.scrapes import ScrapeWriter, kept_names

from notte_exporter.simulator.month import Episode

START = datetime(2026, 6, 15, tzinfo=UTC)
CLOSED = "notte_sessions_closed_total"


def test_a_scrape_keeps_the_sample_names_the_rules_read_and_no_other() -> None:
    kept = kept_names()
    assert {CLOSED, "notte_sessions_active_idle", "notte_exporter_polls_total", "up"} <= kept
    # Served by the exporter, read by no rule: promtool need not read a month of them.
    assert "notte_sessions_active_network_request_bytes" not in kept
    assert "notte_sessions_started_total" not in kept


def test_scrapes_are_filed_one_simulated_day_a_file_each_handed_on_when_complete(
    tmp_path: Path,
) -> None:
    handed: list[Path] = []
    writer = ScrapeWriter(str(tmp_path / "scrapes"), on_chunk=handed.append)
    labels = {"close_reason": "manual"}
    for minutes in range(0, 36 * 60, 120):
        at = START + timedelta(minutes=minutes)
        writer.write([(CLOSED, labels, float(minutes >= 25 * 60))], at)
    assert len(handed) == 1  # the first day, as soon as the second began
    writer.close()
    assert [path.name for path in handed] == ["scrapes-000.om", "scrapes-001.om"]
    first, second = (path.read_text() for path in handed)
    assert first.endswith("# EOF\n")
    assert second.endswith("# EOF\n")
    assert f"{CLOSED}{{" not in first  # still 0 all day: left out
    # Its first increase comes with a 0 at the scrape before, for increase() to see it.
    before = START + timedelta(days=1)
    assert f"}} 0.0 {before.timestamp():.3f}\n" in second


def _result(counted: list[tuple[int, float, float]], leak: Episode) -> RunResult:
    return RunResult(
        start=START,
        end=START + timedelta(days=1),
        episodes=(leak,),
        measured=defaultdict(float),
        truth=defaultdict(float),
        gap_loss=defaultdict(float),
        memory=[],
        polls=0,
        failed_polls=0,
        restarts=0,
        requests=0,
        failed_requests=0,
        ends_counted=[
            EndsCounted(START + timedelta(minutes=m), idle, known) for m, idle, known in counted
        ],
    )


LEAK = Episode("leak", START + timedelta(hours=1), START + timedelta(hours=3))
# Ends counted so far (minute, idle timeouts, known ends): 100 healthy ends in the first
# hour, 2 of them idle timeouts; then the leak's idle timeouts from 72m.
COUNTED = [(0, 0, 0), (60, 2, 100), (70, 2, 104), (72, 3, 107), (74, 6, 112), (76, 8, 116)]


def test_a_leak_shows_once_its_ends_since_it_began_hold_4_idle_timeouts_and_15_percent() -> None:
    result = _result(COUNTED, LEAK)
    # At 72m 1 idle timeout of 7 ends since the leak began; at 74m 4 of 12 (33%).
    assert leak_visible(result, LEAK) == START + timedelta(minutes=74)


def _page(minutes: int) -> Firing:
    at = START + timedelta(minutes=minutes)
    return Firing("NotteSessionLeak", "critical", at, at + timedelta(hours=1))


def test_a_leak_paged_within_for_and_one_evaluation_of_showing_is_in_time() -> None:
    assert late_leaks(_result(COUNTED, LEAK), [_page(74 + 16)]) == []


def test_a_leak_paged_later_than_for_and_one_evaluation_after_showing_is_late() -> None:
    assert late_leaks(_result(COUNTED, LEAK), [_page(74 + 17)]) == [LEAK]
