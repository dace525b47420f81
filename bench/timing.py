"""Timing helpers: medians of repeated, interleaved runs measured with ``perf_counter``.

Candidates and their baseline run in turn within each repeat (in a rotating order), so a
burst of load from a neighbour on the shared machine slows both rather than one of them,
and the ratio between them survives the noise that the absolute numbers do not.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping


def time_once(
    fn: Callable[[], object], inner: int = 1, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds per call of ``fn``, averaged over ``inner`` back-to-back calls, on ``clock``
    (wall time; ``time.process_time`` for the CPU of every thread of this process)."""
    gc.collect()
    started = clock()
    for _ in range(inner):
        fn()
    return (clock() - started) / inner


def cpu_once(fn: Callable[[], object]) -> float:
    """CPU seconds (every thread of this process) of one call of ``fn``."""
    return time_once(fn, clock=time.process_time)


def interleaved_medians(
    candidates: Mapping[str, Callable[[], object]], repeats: int, inner: int = 1
) -> dict[str, float]:
    """Median seconds per call of each candidate, run in rotating order ``repeats`` times."""
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(time_once(candidates[name], inner))
    return {name: statistics.median(values) for name, values in samples.items()}


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``, rounded for reports; NaN-free when the baseline is zero."""
    return round(value / baseline, 3) if baseline > 0 else 0.0
