"""A poll's CPU against its floor: ``json.loads`` of the same page bytes.

The process's CPU time (``time.process_time``: every thread of this process, nothing of
the server's) per poll of the fleet, once through ``httpx.MockTransport`` (no socket) and
once over loopback HTTP from a static page server in a child process; the floor is decoding
the same bytes (every live page and the history page a poll reads) with ``json.loads``.
Measured interleaved. Targets: ratio <= 2 (mock), <= 4 (loopback), both at the default
``--notte.concurrency`` of 4. A poll here includes everything the daemon does per poll:
paging, validation, lifecycle, snapshot and rendering the exposition. Neither API makes a
request wait longer than reading a page takes, so after the warm-up poll the default reads
one page at a time (``paging.pages_ahead``). One more row, with no target, polls over
loopback at ``--notte.concurrency`` 1: the default should cost the same.
"""

from __future__ import annotations

import statistics
from typing import Any

from .fixtures import StaticPages, decode_each, make_exporter
from .page_server import PageServer
from .timing import cpu_once

TARGETS: dict[str, float | None] = {
    "mock": 2.0,
    "loopback": 4.0,
    "loopback, concurrency 1": None,
}


def run(pages: StaticPages, clock: Any, repeats: int) -> dict[str, Any]:
    bodies = [body for _, body in sorted(pages.pages.items())]
    floor = decode_each(bodies)

    mock = make_exporter(clock, transport=pages.transport())
    with PageServer(pages.pages) as url:
        loopback = make_exporter(clock, api_url=url)
        one_by_one = make_exporter(clock, api_url=url, concurrency=1)
        polls = {
            "mock": mock.poll_once,
            "loopback": loopback.poll_once,
            "loopback, concurrency 1": one_by_one.poll_once,
        }
        for poll in polls.values():  # warm up: connections, and the expected page count
            if not poll().ok:
                raise RuntimeError("a benchmark poll failed")
        samples: dict[str, list[float]] = {"floor": [], **{name: [] for name in polls}}
        for _ in range(repeats):
            for name, poll in polls.items():
                samples["floor"].append(cpu_once(floor))
                samples[name].append(cpu_once(poll))
        loopback.close()
        one_by_one.close()
    mock.close()
    cpu = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "sessions": pages.live_sessions,
        "requests": len(bodies),
        "floor_ms": round(cpu["floor"] * 1e3, 2),
        "rows": [
            {
                "transport": name,
                "poll_cpu_ms": round(cpu[name] * 1e3, 2),
                "ratio": round(cpu[name] / cpu["floor"], 2),
                "target": target,
            }
            for name, target in TARGETS.items()
        ],
    }
