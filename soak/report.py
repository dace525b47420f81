"""The soak's tables, in Markdown: accuracy per counter, memory per day, alerts per episode."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta

from notte_exporter.simulator.month import Episode

from .alerts import Firing
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
        "NotteSessionLeak": timedelta(hours=1, minutes=15),
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


def alert_table(result: RunResult, firings: list[Firing]) -> str:
    lines = [
        "| episode | start | NotteSessionLeak after | other alerts (after the start) |",
        "|---|---|---:|---|",
    ]
    for episode in result.episodes:
        own = [f for f in firings if explaining(f, (episode,)) is episode]
        leak = [f for f in own if f.alert == "NotteSessionLeak"]
        delay = _minutes(leak[0].start - episode.start) if leak else "-"
        others = ", ".join(
            f"{f.alert} {_minutes(f.start - episode.start)}"
            for f in own
            if f.alert != "NotteSessionLeak"
        )
        lines.append(
            f"| {episode.kind} | {episode.start:%m-%d %H:%M} | {delay} | {others or '-'} |"
        )
    return "\n".join(lines)


def false_alarms(result: RunResult, firings: list[Firing]) -> list[Firing]:
    return [f for f in firings if explaining(f, result.episodes) is None]


def missed_leaks(result: RunResult, firings: list[Firing]) -> list[Episode]:
    return [
        episode
        for episode in result.episodes
        if episode.kind == "leak"
        and not any(
            f.alert == "NotteSessionLeak" and explaining(f, (episode,)) is episode for f in firings
        )
    ]


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:.0f} min"
