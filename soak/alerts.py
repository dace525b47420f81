"""The bundle's rules over the soak's scrapes, in a real Prometheus: which alerts fired, when.

1. ``promtool tsdb create-blocks-from openmetrics`` turns the scrapes into blocks, a file
   (a simulated day) at a time, in the background while the soak runs on (``Backfill``);
2. a Prometheus started on those blocks (loopback, a free port) serves them, and the
   recording rules are evaluated with range queries at the evaluation interval, one level
   of dependency at a time (a ratio reads the increases recorded the level before); their
   results are written as OpenMetrics, a file a day, turned into blocks by promtool, and
   the Prometheus restarted on the new blocks after each level;
3. each alerting rule's expression is evaluated over the whole run with range queries at
   the evaluation interval, and its ``for`` applied as the rule manager applies it: an alert
   fires once its expression has held at every evaluation for ``for``, and stops at the
   first evaluation where it does not.

Range queries read the same PromQL at the same instants a rule manager would. Step 2 does
what ``promtool tsdb create-blocks-from rules`` does, with a query a week per rule rather
than one per 2-hour block (a month's backfill took minutes that way); promtool backfills
recording rules only, hence step 3.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from .scrapes import escape

EVALUATION_INTERVAL = timedelta(minutes=1)
# Prometheus answers at most 11,000 points per series: a week of minutes is well within.
_CHUNK = timedelta(days=7)


@dataclass(frozen=True)
class Firing:
    alert: str
    severity: str
    start: datetime
    end: datetime


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@retry(
    retry=retry_if_exception_type(httpx.HTTPError),
    wait=wait_fixed(0.2),
    stop=stop_after_delay(120),
    reraise=True,
)
def _wait_ready(url: str) -> None:
    httpx.get(f"{url}/-/ready", timeout=2.0).raise_for_status()


@contextmanager
def _prometheus(data: Path, work: Path) -> Iterator[str]:
    config = work / "prometheus.yml"
    config.write_text("global: {}\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with (work / "prometheus.log").open("a") as log:
        # The prometheus on PATH, like promtool below; fixed arguments, our own paths.
        process = subprocess.Popen(  # noqa: S603
            [  # noqa: S607
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{port}",
                "--query.max-samples=200000000",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def _promtool(*args: str) -> None:
    subprocess.run(["promtool", "tsdb", *args], check=True, capture_output=True)  # noqa: S603, S607


class Backfill:
    """The scrapes' blocks, made one file at a time as the soak hands them over.

    One promtool at a time, on a thread of its own: it works while the soak runs, on the
    machine's other core, and the blocks are ready soon after the run ends.
    """

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="soak-prometheus-"))
        self.data = self.work / "data"
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soak-backfill")
        self._done: list[Future[None]] = []

    def add(self, scrapes: Path) -> None:
        self._done.append(
            self._pool.submit(
                _promtool, "create-blocks-from", "openmetrics", str(scrapes), str(self.data)
            )
        )

    def wait(self) -> None:
        """Every file handed over is in blocks (raises what a promtool raised)."""
        for done in self._done:
            done.result()
        self._pool.shutdown()

    def remove(self) -> None:
        self._pool.shutdown(cancel_futures=True)
        shutil.rmtree(self.work, ignore_errors=True)


def _levels(groups: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The recording rules in levels: each reads only what the levels before it record."""
    rules = [rule for group in groups for rule in group["rules"] if "record" in rule]
    done: set[str] = set()
    levels: list[list[dict[str, Any]]] = []
    while rules:
        recorded = {rule["record"] for rule in rules}
        level = [r for r in rules if not any(name in r["expr"] for name in recorded - done)]
        if not level:
            raise ValueError("recording rules that read each other in a cycle")
        levels.append(level)
        done |= {rule["record"] for rule in level}
        rules = [rule for rule in rules if rule not in level]
    return levels


def evaluate(backfill: Backfill, rules_file: Path, start: datetime, end: datetime) -> list[Firing]:
    """Every firing of every alert of ``rules_file`` over the scrapes, in time order."""
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    work, data = backfill.work, backfill.data
    try:
        backfill.wait()
        for index, level in enumerate(_levels(groups)):
            with _prometheus(data, work) as url:
                files = _record(url, level, start, end, work / f"level{index}")
            for recorded in files:
                _promtool("create-blocks-from", "openmetrics", str(recorded), str(data))
        alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
        with _prometheus(data, work) as url, ThreadPoolExecutor(max_workers=2) as pool:
            # Two queries at once: Prometheus evaluates each on one core.
            found = pool.map(lambda rule: list(_firings(url, rule, start, end)), alerts)
            return sorted((f for fs in found for f in fs), key=lambda f: (f.start, f.alert))
    finally:
        backfill.remove()


def _record(
    url: str, level: list[dict[str, Any]], start: datetime, end: datetime, out: Path
) -> list[Path]:
    """The level's recording rules evaluated over the run, as OpenMetrics files (one a day).

    Each result gets the rule's name and labels, as the rule manager would write it.
    """
    out.mkdir()
    # By day, then by recorded name: the sample lines (one family's lines together).
    days: defaultdict[int, defaultdict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for rule in level:
        name = rule["record"]
        for metric, values in _range(url, rule["expr"], start, end):
            labels = {**metric, **rule.get("labels", {})}
            labels.pop("__name__", None)
            rendered = ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items()))
            for instant, value in values:
                day = int((instant - start.timestamp()) // 86400)
                days[day][name].append(f"{name}{{{rendered}}} {value} {instant}\n")
    files = []
    for day, families in sorted(days.items()):
        path = out / f"recorded-{day:03d}.om"
        with path.open("w") as file:
            for name, lines in sorted(families.items()):
                file.write(f"# TYPE {name} unknown\n")
                file.writelines(lines)
            file.write("# EOF\n")
        files.append(path)
    return files


def _range(
    url: str, expr: str, start: datetime, end: datetime
) -> Iterator[tuple[dict[str, str], list[tuple[float, str]]]]:
    """The expression at every evaluation instant of the run: each series's labels and
    (instant, value) pairs, a week of them at a time."""
    step = EVALUATION_INTERVAL.total_seconds()
    chunk_start = start
    with httpx.Client(base_url=url, timeout=300.0) as client:
        while chunk_start < end:
            chunk_end = min(chunk_start + _CHUNK, end)
            response = client.post(
                "/api/v1/query_range",
                data={
                    "query": expr,
                    "start": chunk_start.timestamp(),
                    "end": chunk_end.timestamp(),
                    "step": step,
                },
            )
            response.raise_for_status()
            for series in response.json()["data"]["result"]:
                yield series["metric"], [(float(t), v) for t, v in series["values"]]
            chunk_start = chunk_end + EVALUATION_INTERVAL


def _active_at(url: str, expr: str, start: datetime, end: datetime) -> dict[str, list[float]]:
    """For each label set the expression returns, the evaluation instants it returned it at."""
    found: dict[str, list[float]] = {}
    for metric, values in _range(url, expr, start, end):
        labels = ",".join(f"{k}={v}" for k, v in sorted(metric.items()))
        found.setdefault(labels, []).extend(t for t, _ in values)
    return found


def _firings(url: str, rule: dict[str, Any], start: datetime, end: datetime) -> Iterator[Firing]:
    hold = _duration(rule.get("for", "0s"))
    step = EVALUATION_INTERVAL.total_seconds()
    severity = rule.get("labels", {}).get("severity", "")
    for instants in _active_at(url, rule["expr"], start, end).values():
        run_start: float | None = None
        previous: float | None = None
        for instant in [*sorted(set(instants)), None]:
            if instant is not None and previous is not None and instant - previous <= step:
                previous = instant
                continue
            if run_start is not None and previous is not None and previous - run_start >= hold:
                yield Firing(
                    rule["alert"],
                    severity,
                    _moment(run_start + hold, start),
                    _moment(previous + step, start),
                )
            run_start = previous = instant


def _moment(timestamp: float, like: datetime) -> datetime:
    return datetime.fromtimestamp(timestamp, like.tzinfo)


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(text[:-1]) * units[text[-1]]
