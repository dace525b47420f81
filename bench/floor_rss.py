"""Resident memory of the exporter with the fleet live, measured in a fresh process.

Earlier phases of the benchmark leave their fleets in the benchmark's own process, so the
exporter is built in a child process of its own (spawned: nothing inherited), as the
daemon builds it (process metrics included), and polls the fleet over loopback HTTP from a
static page server (another process) a few times; then, after ``gc.collect()``, the child
reads its ``VmRSS`` (and ``VmHWM``, the peak) from ``/proc/self/status``. Target: 60 MB.
How memory stays flat over time is the churn phase's business (``memory_bound.py``).
"""

from __future__ import annotations

import gc
import multiprocessing
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .page_server import PageServer

if TYPE_CHECKING:
    # Only a type here: the child imports this module, and the fixtures would bring the
    # simulator and its models into the process measured (~0.5 MB the daemon never loads).
    from .fixtures import StaticPages

TARGET_MB = 60.0
POLLS = 3


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _child(url: str, conn: Connection) -> None:
    from pydantic import SecretStr  # noqa: PLC0415 - imported in the child only

    from notte_exporter.config import Settings  # noqa: PLC0415
    from notte_exporter.daemon import Exporter  # noqa: PLC0415
    from notte_exporter.keys import ApiKey  # noqa: PLC0415

    settings = Settings(
        notte_api_url=url,
        notte_api_key=SecretStr("bench-key"),
        notte_max_pages=1000,
        poll_timeout=600,
        collector_usage=False,
    )
    exporter = Exporter(settings, ApiKey(SecretStr("bench-key")))
    before = _status_kib("VmRSS")
    statuses = [exporter.poll_once() for _ in range(POLLS)]
    exporter.exposition()
    gc.collect()
    conn.send(
        {
            "ok": all(status.ok for status in statuses),
            "sessions": statuses[-1].sessions,
            "rss_before_polls_kib": before,
            "rss_kib": _status_kib("VmRSS"),
            "peak_kib": _status_kib("VmHWM"),
        }
    )


def run(pages: StaticPages) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with PageServer(pages.pages) as url:
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(url, send))
        child.start()
        result: dict[str, Any] = receive.recv()
        child.join(timeout=60)
    if not result["ok"]:
        raise RuntimeError("a benchmark poll failed in the memory child")
    result["rss_mb"] = round(result["rss_kib"] / 1024, 1)
    result["peak_mb"] = round(result["peak_kib"] / 1024, 1)
    result["target_mb"] = TARGET_MB
    return result
