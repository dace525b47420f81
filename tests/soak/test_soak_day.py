"""One simulated day of the soak (``make soak`` runs thirty): counts exact but for restart gaps.

The day holds a leak with an exporter restart in the middle of it, an error burst and
faults on a fifth of the requests. Polled every five minutes rather than every minute, so
that the day fits in seconds; the month polls every two minutes.
"""

from __future__ import annotations

import logging

import pytest
from soak.report import unexplained
from soak.run import Soak

# A simulated day costs seconds of CPU: the full tier's (tests/tiers.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def day():
    # The injected faults log a failure now and then; the comparison says all there is to say.
    logging.disable(logging.WARNING)
    try:
        return Soak(1, poll_interval=300.0).run()
    finally:
        logging.disable(logging.NOTSET)


def test_one_simulated_day_counts_everything_but_a_restart_gap_exactly(day) -> None:
    assert day.restarts == 1
    assert day.failed_requests > 0
    assert unexplained(day) == {}


def test_a_restart_during_a_leak_loses_only_what_fell_in_its_gap(day) -> None:
    lost_ends = sum(
        v for (family, _), v in day.gap_loss.items() if family == "notte_sessions_closed"
    )
    ends = sum(v for (family, _), v in day.truth.items() if family == "notte_sessions_closed")
    # A restart right after a complete listing loses only the ends of the next poll interval.
    assert lost_ends < ends / 100


def test_tracked_ids_stay_within_the_day_that_passed(day) -> None:
    last = day.memory[-1].exporter
    ends = sum(v for (family, _), v in day.truth.items() if family == "notte_sessions_closed")
    assert last.ended_remembered <= ends
    assert last.pending == 0
