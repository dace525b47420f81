"""Renders the latest snapshot and poll status as Prometheus metric families.

A custom collector in the manner of prometheus_client's own: every scrape builds fresh
families from the immutable state, so a session that disappears from the API disappears
from ``/metrics`` by itself, and a scrape never calls the API. Snapshot gauges are absent
until the first successful poll (there is nothing true to say before it) and afterwards
always reflect the last successful one.

Exposition (abridged)::

    # HELP notte_up Whether the last poll of the Notte API succeeded (1) or failed (0).
    # TYPE notte_up gauge
    notte_up 1.0
    # HELP notte_sessions_active Live sessions at the last successful poll, by browser type.
    # TYPE notte_sessions_active gauge
    notte_sessions_active{browser_type="chromium"} 3.0
    notte_sessions_active{browser_type="firefox"} 0.0
    # HELP notte_session_info One of the oldest live sessions at the last successful poll ...
    # TYPE notte_session_info gauge
    notte_session_info{browser_type="chromium",session_id="9f1c...",status="active"} 1.0
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from notte_exporter import __version__
from notte_exporter.instrumentation import RateLimit
from notte_exporter.labels import FEATURES, OVERDUE_REASONS
from notte_exporter.polling.lifecycle import LifecycleStats
from notte_exporter.polling.snapshot import Snapshot
from notte_exporter.polling.state import ExporterState

_AT_LAST_POLL = "at the last successful poll"

# Every family collect() may yield. Which of them appear depends on the data, but the names
# are fixed, and describe() must give them all: the registry answers ?name[]= filters and
# catches duplicate names through describe(), never through collect().
FAMILIES = (
    "notte_up",
    "notte_exporter_build_info",
    "notte_exporter_last_poll_success_timestamp_seconds",
    "notte_api_rate_limit_limit",
    "notte_api_rate_limit_remaining",
    "notte_api_rate_limit_reset_timestamp_seconds",
    "notte_exporter_tracked_sessions",
    "notte_sessions_active",
    "notte_sessions_active_with_feature",
    "notte_sessions_active_network_request_bytes",
    "notte_sessions_active_network_response_bytes",
    "notte_sessions_active_with_error",
    "notte_sessions_active_idle",
    "notte_sessions_overdue",
    "notte_sessions_oldest_created_timestamp_seconds",
    "notte_sessions_limit",
    "notte_session_info",
    "notte_session_created_timestamp_seconds",
    "notte_session_last_accessed_timestamp_seconds",
)


class SessionCollector(Collector):
    def __init__(
        self,
        state: ExporterState,
        browser_types: Callable[[], tuple[str, ...]],
        rate_limit: Callable[[], RateLimit],
        lifecycle_stats: Callable[[], LifecycleStats],
        *,
        sessions_limit: int | None = None,
        mode: str = "live",
        keyed: bool = False,
    ) -> None:
        self._mode = mode
        # notte_sessions_active by browser type and key (an account of --config.file).
        self._keyed = keyed
        self._state = state
        self._browser_types = browser_types
        self._rate_limit = rate_limit
        self._lifecycle_stats = lifecycle_stats
        self._sessions_limit = sessions_limit

    def describe(self) -> list[Metric]:
        # Names only: describing never reads the state, so registering is free at start-up.
        return [GaugeMetricFamily(name, "") for name in FAMILIES]

    def collect(self) -> Iterator[Metric]:
        yield from self._exporter_families()
        snapshot = self._state.snapshot
        if snapshot is not None:
            yield from self._snapshot_families(snapshot)

    def _exporter_families(self) -> Iterator[Metric]:
        yield _gauge(
            "notte_up",
            "Whether the last poll of the Notte API succeeded (1) or failed (0).",
            1.0 if self._state.up else 0.0,
        )
        build = GaugeMetricFamily(
            "notte_exporter_build_info",
            "The exporter's version, Python version and mode: demo (simulated data) or live; "
            "always 1.",
            labels=["version", "python_version", "mode"],
        )
        build.add_metric([__version__, platform.python_version(), self._mode], 1.0)
        yield build
        last_success = self._state.last_success
        if last_success is not None:
            yield _gauge(
                "notte_exporter_last_poll_success_timestamp_seconds",
                "Unix time of the last successful poll; the age of every snapshot metric.",
                last_success.timestamp(),
            )
        rate_limit = self._rate_limit()
        for name, value, help_text in (
            ("limit", rate_limit.limit, "Requests allowed per window, from X-RateLimit-Limit"),
            (
                "remaining",
                rate_limit.remaining,
                "Requests left in the window, from X-RateLimit-Remaining",
            ),
            (
                "reset_timestamp_seconds",
                rate_limit.reset_timestamp,
                "Unix time the window resets, from X-RateLimit-Reset",
            ),
        ):
            if value is not None:
                yield _gauge(
                    f"notte_api_rate_limit_{name}",
                    f"{help_text} of the latest API response that sent it.",
                    value,
                )
        stats = self._lifecycle_stats()
        tracked = GaugeMetricFamily(
            "notte_exporter_tracked_sessions",
            "Sessions the exporter keeps in memory to count lifecycles: live, pending "
            "(vanished, end not yet learned) and ended (remembered to never count twice).",
            labels=["state"],
        )
        tracked.add_metric(["live"], stats.live)
        tracked.add_metric(["pending"], stats.pending)
        tracked.add_metric(["ended"], stats.ended_remembered)
        yield tracked

    def _snapshot_families(self, snapshot: Snapshot) -> Iterator[Metric]:
        browsers = _ordered(self._browser_types(), snapshot.active)
        if self._keyed:
            yield _active_by_key(browsers, snapshot)
        else:
            yield _by_label(
                "notte_sessions_active",
                f"Live sessions {_AT_LAST_POLL}, by browser type.",
                "browser_type",
                browsers,
                snapshot.active,
            )
        yield _by_label(
            "notte_sessions_active_with_feature",
            f"Live sessions using a feature {_AT_LAST_POLL} "
            "(headful: sessions not running headless).",
            "feature",
            FEATURES,
            snapshot.with_feature,
        )
        yield _by_label(
            "notte_sessions_active_network_request_bytes",
            f"Sum of the network request bytes of the live sessions {_AT_LAST_POLL}.",
            "browser_type",
            browsers,
            snapshot.request_bytes,
        )
        yield _by_label(
            "notte_sessions_active_network_response_bytes",
            f"Sum of the network response bytes of the live sessions {_AT_LAST_POLL}.",
            "browser_type",
            browsers,
            snapshot.response_bytes,
        )
        yield _by_label(
            "notte_sessions_active_with_error",
            f"Live sessions that report an error {_AT_LAST_POLL}.",
            "browser_type",
            browsers,
            snapshot.with_error,
        )
        yield _by_label(
            "notte_sessions_active_idle",
            f"Live sessions not accessed for longer than the idle threshold {_AT_LAST_POLL}.",
            "browser_type",
            browsers,
            snapshot.idle,
        )
        yield _by_label(
            "notte_sessions_overdue",
            f"Live sessions past their max duration or idle timeout plus grace {_AT_LAST_POLL};"
            " the platform should have closed them and they are still billed.",
            "reason",
            OVERDUE_REASONS,
            snapshot.overdue,
        )
        if snapshot.oldest_created_at is not None:
            yield _gauge(
                "notte_sessions_oldest_created_timestamp_seconds",
                f"Creation time of the oldest live session {_AT_LAST_POLL}.",
                snapshot.oldest_created_at.timestamp(),
            )
        if self._sessions_limit is not None:
            yield _gauge(
                "notte_sessions_limit",
                "The plan's limit of sessions at once, as configured with --sessions.limit.",
                float(self._sessions_limit),
            )
        yield from self._detail_families(snapshot)

    def _detail_families(self, snapshot: Snapshot) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "notte_session_info",
            f"One of the oldest live sessions {_AT_LAST_POLL}; always 1.",
            labels=["session_id", "browser_type", "status"],
        )
        created = GaugeMetricFamily(
            "notte_session_created_timestamp_seconds",
            f"Creation time of one of the oldest live sessions {_AT_LAST_POLL}.",
            labels=["session_id"],
        )
        accessed = GaugeMetricFamily(
            "notte_session_last_accessed_timestamp_seconds",
            f"Last access time of one of the oldest live sessions {_AT_LAST_POLL}.",
            labels=["session_id"],
        )
        for detail in snapshot.oldest:
            # A label value already: redacted and cut when the snapshot was taken.
            session_id = detail.session_id
            info.add_metric([session_id, detail.browser_type, detail.status], 1.0)
            created.add_metric([session_id], detail.created_at.timestamp())
            accessed.add_metric([session_id], detail.last_accessed_at.timestamp())
        if snapshot.oldest:
            yield info
            yield created
            yield accessed


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _by_label(
    name: str,
    help_text: str,
    label: str,
    values: tuple[str, ...],
    counts: dict[str, int],
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=[label])
    for value in values:
        family.add_metric([value], float(counts.get(value, 0)))
    return family


def _active_by_key(browsers: tuple[str, ...], snapshot: Snapshot) -> GaugeMetricFamily:
    """Every browser type times every key the snapshot knows, and any pair it has beyond."""
    counts = snapshot.active_by_key or {}
    keys = snapshot.keys + tuple(
        dict.fromkeys(key for _, key in counts if key not in snapshot.keys)
    )
    family = GaugeMetricFamily(
        "notte_sessions_active",
        f"Live sessions {_AT_LAST_POLL}, by browser type and the key they are attributed to.",
        labels=["browser_type", "key"],
    )
    for browser in browsers:
        for key in keys:
            family.add_metric([browser, key], float(counts.get((browser, key), 0)))
    return family


def _ordered(known: tuple[str, ...], present: dict[str, int]) -> tuple[str, ...]:
    """Every known value, then any value the snapshot has that is not known yet."""
    return known + tuple(value for value in present if value not in known)
