"""What publishing a poll's exposition costs, and where it goes, against the poll's floor.

``python -m bench.publish_cost [--sessions N] [--repeats R]`` polls N live sessions through
the mock transport (``StaticPages``), then measures in rotating order the CPU
(``time.process_time``, every thread) of, each a median of R:

- ``floor``: ``json.loads`` of the poll's page bytes, as in ``floor_poll_parts.py``;
- ``prometheus_client, whole``: the registry read once and rendered whole in both formats
  by prometheus_client's encoders, each gzipped at level 6: what ``publish()`` did before
  it kept each family's bytes and compressed at level 3;
- ``publish after a poll``: ``publish()`` right after a poll that did not publish
  (``Poller.poll()``), so the families that poll changed are rendered again;
- ``publish after a busy poll``: the same, by a second exporter reading the simulated
  account itself (``account_handler``, in process) after 30 s in which 20 sessions ended
  and 20 started: the clock, the lifecycle counters and histograms and the oldest
  sessions move too (about 20 of 31 families change);
- ``publish, nothing changed``: ``publish()`` right after another ``publish()``;
- the parts every publish pays whatever changed: reading the registry, the families'
  identities (both formats share one reading) and gzipping both formats (at level 3).

About 90 s at the defaults, most of it the simulated account answering the busy polls.
"""

from __future__ import annotations

import argparse
import random
import statistics
import zlib
from collections.abc import Callable

import httpx
from prometheus_client.exposition import choose_encoder

from notte_exporter.exposition import GZIP_LEVEL
from notte_exporter.families import OPENMETRICS, Collected

from .fixtures import Fleet, account_handler, decode_each, make_exporter, quiet_logs
from .timing import cpu_once, print_against_floor

# publish()'s gzip level before it was lowered to GZIP_LEVEL, for the whole-render baseline.
BEFORE_LEVEL = 6
# A busy account between two polls: the default poll interval, sessions ended and started.
POLL_SECONDS = 30
CHURN = 20


def run(sessions: int, repeats: int) -> dict[str, float]:
    fleet = Fleet()
    fleet.grow_to(sessions)
    pages = fleet.snapshot_pages()
    floor = decode_each(list(pages.pages.values()))
    exporter = make_exporter(fleet.clock, transport=pages.transport())
    if not exporter.poll_once().ok:
        raise RuntimeError("a benchmark poll failed")
    registry, published = exporter.registry, exporter.published
    busy = make_exporter(fleet.clock, transport=httpx.MockTransport(account_handler(fleet.account)))
    if not busy.poll_once().ok:
        raise RuntimeError("a benchmark poll failed")
    rng = random.Random(1)
    encoders = [choose_encoder("")[0], choose_encoder(OPENMETRICS)[0]]
    families = list(registry.collect())
    texts = [encoder(Collected(families)) for encoder in encoders]

    def whole() -> None:
        once = Collected(list(registry.collect()))
        for encoder in encoders:
            gzipped(encoder(once), BEFORE_LEVEL)

    def after_poll() -> float:
        exporter.poller.poll()
        return cpu_once(published.publish)

    def after_busy_poll() -> float:
        fleet.clock.advance(POLL_SECONDS)
        for session_id in rng.sample(fleet.account.session_ids(), CHURN):
            fleet.account.stop(session_id)
        fleet.grow_to(fleet.size + CHURN)
        busy.poller.poll()
        return cpu_once(busy.published.publish)

    def unchanged() -> float:
        published.publish()
        return cpu_once(published.publish)

    timed: dict[str, Callable[[], float]] = {
        "floor": lambda: cpu_once(floor),
        "prometheus_client, whole": lambda: cpu_once(whole),
        "publish after a poll": after_poll,
        "publish after a busy poll": after_busy_poll,
        "publish, nothing changed": unchanged,
        "  read the registry": lambda: cpu_once(lambda: list(registry.collect())),
        "  identities": lambda: cpu_once(lambda: Collected(families).identities),
        "  gzip both formats": lambda: cpu_once(
            lambda: [gzipped(text, GZIP_LEVEL) for text in texts]
        ),
    }
    names = list(timed)
    samples: dict[str, list[float]] = {name: [] for name in names}
    try:
        for repeat in range(repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(timed[name]())
    finally:
        exporter.close()
        busy.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def gzipped(body: bytes, level: int) -> bytes:
    """``body`` compressed as publish compresses it (raw deflate, flushed)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush(zlib.Z_SYNC_FLUSH)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=41)
    args = parser.parse_args()
    quiet_logs()
    title = f"Publish CPU, {args.sessions} live sessions (medians of {args.repeats}, interleaved)"
    print_against_floor(title, run(args.sessions, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
