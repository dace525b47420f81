"""The soak's tables, in Markdown: accuracy per counter, memory per day, alerts per episode."""

from __future__ import annotations

from collections import Counter, defaultdict

from .run import COUNTERS, Key, RunResult

# Exact counts; seconds may differ by float rounding, and are held to 0.1%.
_EXACT = {
    "notte_sessions_started",
    "notte_sessions_closed",
    "notte_network_request_bytes",
    "notte_network_response_bytes",
}
SECONDS_TOLERANCE = 0.001


def _by_family(counter: Counter[Key]) -> dict[str, float]:
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
    wrong = _by_family(Counter(unexplained(result)))
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
    lines = [
        "| day | RSS (MiB) | live ids | pending ids | remembered ends |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {m.day} | {m.rss_mib:.1f} | {m.live} | {m.pending} | {m.ended_remembered} |"
        for m in result.memory
    )
    return "\n".join(lines)


def summary(result: RunResult) -> str:
    days = (result.end - result.start).total_seconds() / 86400
    return (
        f"{days:.1f} simulated days from {result.start:%Y-%m-%d}: {result.polls} polls "
        f"({result.failed_polls} failed), {result.requests} requests "
        f"({result.failed_requests} failed by injection), {result.restarts} restarts, "
        f"{len(result.episodes)} episodes"
    )
