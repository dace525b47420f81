"""A real run of the reaper, for docs/reaper.md: a leaking fleet, first in dry run, then live.

    PYTHONPATH=exporter python scripts/reaper_run.py

A simulated account on loopback holds 30 leaked sessions (idle 10.5 to 25 minutes, with
the API's longest idle timeout, 30 minutes, so Notte would bill each for 5 to 20 minutes
more) and 5 that an agent keeps using; nobody but the reaper stops anything, so every
manual close is one of its stops.
The exporter runs as the operator runs it (the CLI, --poll.interval 5s) with a policy file
in dry run; after the dry run has counted every leaked session the file is edited to
dry_run: false, which the exporter picks up without a signal. Each poll's scrape is printed
as one row, then the totals, the write requests the simulator received, and the audit lines.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx

from notte_exporter.simulator import SimulatedAccount, SimulatorServer, SystemClock

POLL = 5.0
POLICY = """\
dry_run: {dry_run}
max_stops_per_poll: 5
max_stops_per_hour: 60
policies:
  - name: idle-10m
    idle_longer_than: 10m
"""
SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$", re.M)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fleet(account: SimulatedAccount) -> list[str]:
    now = account.now()
    for index in range(30):
        account.start_session(
            session_id=f"leaked-{index:02d}",
            created_at=now - timedelta(minutes=30 - index / 2),
            last_accessed_at=now - timedelta(minutes=25 - index / 2),
            idle_timeout_minutes=30,
            max_duration_minutes=120,
        )
    return [account.start_session(session_id=f"busy-{index}") for index in range(5)]


def keep_using(account: SimulatedAccount, busy: list[str], stop: threading.Event) -> None:
    while not stop.wait(2.0):
        for session_id in busy:
            account.access(session_id, request_bytes=1_000, response_bytes=50_000)


def scrape(url: str) -> dict[str, float]:
    text = httpx.get(url, timeout=5).text
    values: dict[str, float] = {}
    for match in SAMPLE.finditer(text):
        key = f"{match['name']}{{{match['labels'] or ''}}}"
        values[key] = float(match["value"])
    return values


def total(values: dict[str, float], name: str, *matchers: str) -> float:
    return sum(
        value
        for key, value in values.items()
        if key.startswith(name + "{") and all(matcher in key for matcher in matchers)
    )


class Run:
    """The exporter as a process, its log, and one printed row per scrape."""

    def __init__(self, api: SimulatorServer, key: str, policy: Path) -> None:
        self.api = api
        self.policy = policy
        self.port = free_port()
        self.log: list[str] = []
        self.writes_in_dry_run = -1
        self.saved = 0.0
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "notte_exporter", "--notte.api-url", api.url,
             "--poll.interval", f"{POLL}s", "--web.listen-address", f"127.0.0.1:{self.port}",
             "--no-collector.usage", "--reaper.config.file", str(policy)],
            env={**os.environ, "NOTTE_API_KEY": key}, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._started = time.monotonic()

    def _read(self) -> None:
        assert self._process.stderr is not None
        self.log.extend(self._process.stderr)

    def row(self) -> tuple[bool, float, float]:
        """Scrape, print a row; returns dry run or not, candidates, dry-run stops."""
        values = scrape(f"http://127.0.0.1:{self.port}/metrics")
        dry = values.get("notte_reaper_dry_run{}", 1.0) == 1.0
        candidates = total(values, "notte_reaper_candidates")
        rehearsed = total(values, "notte_reaper_stops_total", 'result="dry_run"')
        stopped = total(values, "notte_reaper_stops_total", 'result="stopped"')
        failed = total(values, "notte_reaper_stops_total", 'result="failed"')
        manual = total(values, "notte_sessions_closed_total", 'close_reason="manual"')
        live = total(values, "notte_sessions_active")
        self.saved = total(values, "notte_reaper_saved_browser_seconds_total")
        print(
            f"{time.monotonic() - self._started:3.0f} | {'dry run' if dry else 'live   '} | "
            f"{candidates:10.0f} | {rehearsed:7.0f} | {stopped:7.0f} | {failed:6.0f} | "
            f"{manual:13.0f} | {live:4.0f}"
        )
        return dry, candidates, rehearsed

    def go_live(self) -> None:
        self.writes_in_dry_run = sum(1 for r in self.api.requests if r.method != "GET")
        self.policy.write_text(POLICY.format(dry_run="false"))

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        self._reader.join(timeout=5)

    def lines(self, words: str) -> list[str]:
        return [line.rstrip() for line in self.log if words in line]


def report(run: Run, account: SimulatedAccount, key: str) -> None:
    writes = [r for r in run.api.requests if r.method != "GET"]
    every_one_a_stop = all(r.method == "DELETE" and r.path.endswith("/stop") for r in writes)
    print(
        f"\nwrite requests received: {run.writes_in_dry_run} in the dry run, {len(writes)} in "
        f"all, every one DELETE /sessions/{{id}}/stop: {every_one_a_stop}"
    )
    print(f"browser time saved: {run.saved / 3600:.2f} h")
    print(
        f"audit lines: {len(run.lines('would stop'))} dry run, "
        f"{len(run.lines('reaper stopped session'))} stopped, "
        f"{len(run.lines('reaper could not stop'))} failed"
    )
    print(f"live sessions left: {sorted(account.session_ids())}")
    print("\nfirst audit lines:")
    for line in [
        *run.lines("would stop")[:1],
        *run.lines("reaper config reloaded"),
        *run.lines("reaper stopped session")[:1],
    ]:
        print(line)
    print(f"key in the log: {any(key in line for line in run.log)}")


def main() -> int:
    key = f"sk-run-{secrets.token_hex(8)}"
    account = SimulatedAccount(clock=SystemClock(), profile=None)
    busy = fleet(account)
    using = threading.Event()
    threading.Thread(target=keep_using, args=(account, busy, using), daemon=True).start()
    with (
        SimulatorServer(account, api_key=key, rate_limit=600) as api,
        tempfile.TemporaryDirectory() as tmp,
    ):
        policy = Path(tmp) / "reaper.yaml"
        policy.write_text(POLICY.format(dry_run="true"))
        run = Run(api, key, policy)
        print("  t | mode    | candidates | dry_run | stopped | failed | closed manual | live")
        live_since: int | None = None
        try:
            time.sleep(POLL / 2)
            for tick in range(40):
                dry, candidates, rehearsed = run.row()
                if dry and rehearsed >= 30 and live_since is None:
                    run.go_live()
                    live_since = tick
                if live_since is not None and not dry and candidates == 0:
                    break
                time.sleep(POLL)
        finally:
            run.stop()
            using.set()
        report(run, account, key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
