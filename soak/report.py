"""The soak's tables, in Markdown: accuracy per counter, memory per day, alerts per episode."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta

from mixin.config import DEFAULT, duration_seconds

from notte_exporter.simulator.month import Episode

from .alerts import EVALUATION_INTERVAL, Firing
from .run import COUNTERS, Key, RunResult

# Exact counts; seconds may differ by float rounding, and are held to 0.1%.
_EXACT = {
    "notte_sessions_started",
    "notte_sessions_closed",
    "notte_network_request_bytes",
    "notte_network_response_bytes",
}
SECONDS_TOLERANCE = 0.001


def _by_family(counter: Mapping[Key, float]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for (family, _), value in counter.items():
        totals[family] += value
    return totals


def unexplained(result: RunResult) -> dict[Key, float]:
    """Every label set whose counted value is not the truth less its restart-gap loss."""
    wrong: dict[Key, float] = {}
    for key in set(result.truth) | set(result.measured) | set(result.gap_loss):
        expected = result.truth[key] - result.gap_loss[key]
        off = expected - result.measured[key]
        family = key[0]
        allowed = 0.5 if family in _EXACT else SECONDS_TOLERANCE * max(result.truth[key], 1.0)
        if abs(off) > allowed:
            wrong[key] = off
    return wrong


def accuracy_table(result: RunResult) -> str:
    truth = _by_family(result.truth)
    measured = _by_family(result.measured)
    lost = _by_family(result.gap_loss)
    wrong = _by_family(unexplained(result))
    lines = [
        "| counter | truth | counted | restart-gap loss | unexplained | condition |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for family in COUNTERS:
        rule = "exact" if family in _EXACT else "within 0.1%"
        lines.append(
            f"| `{family}_total` | {truth[family]:,.0f} | {measured[family]:,.0f} "
            f"| {lost[family]:,.0f} | {wrong.get(family, 0):,.0f} | {rule} |"
        )
    return "\n".join(lines)


def memory_table(result: RunResult) -> str:
    """The exporter process's memory per day; with tracing, what holds Python's part."""
    traced = any(m.exporter.traced_mib is not None for m in result.memory)
    extra = " traced (MiB) | held most by (MiB) |" if traced else ""
    lines = [
        "| day | exporter RSS (MiB) | live ids | pending ids | remembered ends |" + extra,
        "|---:|---:|---:|---:|---:|" + ("---:|---|" if traced else ""),
    ]
    for m in result.memory:
        e = m.exporter
        line = f"| {m.day} | {e.rss_mib:.1f} | {e.live} | {e.pending} | {e.ended_remembered} |"
        if traced:
            top = ", ".join(f"{name} {size:.1f}" for name, size in e.top_files[:3])
            line += f" {e.traced_mib or 0:.1f} | {top} |"
        lines.append(line)
    return "\n".join(lines)


def summary(result: RunResult) -> str:
    days = (result.end - result.start).total_seconds() / 86400
    return (
        f"{days:.1f} simulated days from {result.start:%Y-%m-%d}: {result.polls} polls "
        f"({result.failed_polls} failed), {result.requests} requests "
        f"({result.failed_requests} failed by injection), {result.restarts} restarts, "
        f"{len(result.episodes)} episodes"
    )


# What each kind of episode may page, and how long after its end its windows still see it
# (the rule's window plus its `for`).
EXPECTED: dict[str, dict[str, timedelta]] = {
    "leak": {
        # The leak's last sessions time out 10-12 minutes after it ends; then window and for.
        "NotteSessionLeak": timedelta(minutes=15 + 15 + 15),
        "NotteSessionsIdle": timedelta(minutes=30),
        "NotteIdleWasteHigh": timedelta(hours=6, minutes=15),
    },
    "error_burst": {"NotteSessionErrorsHigh": timedelta(hours=1, minutes=15)},
    "outage": {
        "NotteExporterDown": timedelta(minutes=15),
        "NotteUsageUnavailable": timedelta(minutes=45),
    },
    "key_rotation": {
        "NotteExporterDown": timedelta(minutes=15),
        "NotteUsageUnavailable": timedelta(minutes=45),
    },
    "restart": {},
}


def explaining(firing: Firing, episodes: tuple[Episode, ...]) -> Episode | None:
    """The injected episode a firing belongs to, if any."""
    for episode in episodes:
        after = EXPECTED[episode.kind].get(firing.alert)
        if after is not None and episode.start <= firing.start <= episode.end + after:
            return episode
    return None


def leak_visible(result: RunResult, episode: Episode) -> datetime | None:
    """The first scrape at which the ends counted since the leak began show it.

    That is: at least ``leak_min_idle_timeouts`` ends closed by idle timeout, and more than
    ``leak_share`` of the ends with a known reason, counted from the last scrape before the
    leak began (across restarts, as ``increase()`` reads them). No rule can tell a leak from
    a healthy account's forgotten sessions before that; a rule whose window also holds the
    ends from before the leak (an hour of healthy ones) sees it later.
    """
    counted = result.ends_counted
    before = [c for c in counted if c.at <= episode.start]
    if not before:
        return None
    base = before[-1]
    for count in counted[len(before) :]:
        idle = count.idle_timeouts - base.idle_timeouts
        known = count.known - base.known
        if idle >= DEFAULT.leak_min_idle_timeouts and idle > DEFAULT.leak_share * known:
            return count.at
    return None


def leak_deadline() -> timedelta:
    """How long after a leak is visible NotteSessionLeak must fire: `for` and one evaluation."""
    return timedelta(seconds=duration_seconds(DEFAULT.leak_for)) + EVALUATION_INTERVAL


def _leak_page(firings: list[Firing], episode: Episode) -> Firing | None:
    own = [
        f for f in firings if f.alert == "NotteSessionLeak" and explaining(f, (episode,)) is episode
    ]
    return own[0] if own else None


def alert_table(result: RunResult, firings: list[Firing]) -> str:
    lines = [
        "| episode | start | leak visible after | NotteSessionLeak after | in time | "
        "other alerts (after the start) |",
        "|---|---|---:|---:|---|---|",
    ]
    for episode in result.episodes:
        own = [f for f in firings if explaining(f, (episode,)) is episode]
        page = _leak_page(firings, episode) if episode.kind == "leak" else None
        visible = leak_visible(result, episode) if episode.kind == "leak" else None
        delay = _minutes(page.start - episode.start) if page else "-"
        seen = _minutes(visible - episode.start) if visible else "-"
        in_time = "-"
        if page is not None and visible is not None:
            in_time = "yes" if page.start - visible <= leak_deadline() else "no"
        others = ", ".join(
            f"{f.alert} {_minutes(f.start - episode.start)}"
            for f in own
            if f.alert != "NotteSessionLeak"
        )
        lines.append(
            f"| {episode.kind} | {episode.start:%m-%d %H:%M} | {seen} | {delay} | {in_time} "
            f"| {others or '-'} |"
        )
    return "\n".join(lines)


def late_leaks(result: RunResult, firings: list[Firing]) -> list[Episode]:
    """Leaks paged later than `for` and one evaluation after they became visible."""
    late = []
    for episode in result.episodes:
        if episode.kind != "leak":
            continue
        page = _leak_page(firings, episode)
        visible = leak_visible(result, episode)
        if page is not None and visible is not None and page.start - visible > leak_deadline():
            late.append(episode)
    return late


def false_alarms(result: RunResult, firings: list[Firing]) -> list[Firing]:
    return [f for f in firings if explaining(f, result.episodes) is None]


def missed_leaks(result: RunResult, firings: list[Firing]) -> list[Episode]:
    return [
        episode
        for episode in result.episodes
        if episode.kind == "leak" and _leak_page(firings, episode) is None
    ]


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:.0f} min"
