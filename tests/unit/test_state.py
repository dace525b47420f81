"""What waiting for a poll promises: a scrape made afterwards sees it."""

from datetime import UTC, datetime

from notte_exporter.errors import FailureReason
from notte_exporter.polling.state import ExporterState, PollStatus


def test_a_poll_is_waited_for_until_its_results_are_published() -> None:
    state = ExporterState()
    state.record_failure(
        PollStatus(
            ok=False,
            finished_at=datetime(2026, 5, 1, tzinfo=UTC),
            duration_seconds=0.1,
            reason=FailureReason.NETWORK,
        )
    )
    assert not state.wait_for_polls(1, timeout=0)  # recorded, but scrapes do not see it yet
    state.poll_published()
    assert state.wait_for_polls(1, timeout=0)
