"""The bytes of ``/metrics``: a poll's part rendered once per poll, the process's at each scrape.

Everything the exporter knows changes only when a poll ends, so ``publish()`` (called by the
poll thread after each poll, successful or not) reads the registry once, keeps that reading
as the poll's snapshot (a registry of its own) and renders it with prometheus_client's own
encoders, in every format scrapers have asked for. Scrapes serve those bytes. Two things
follow:

* a scrape's cost does not grow with the sessions: the poll's part is already rendered;
* a scrape sees one poll, whole: the snapshot, the poll counters and the lifecycle counts
  are read in one go by the thread that just changed them, never half-way through a poll.
  Whatever a scrape asks for (a format, a ``?name[]=`` filter) comes from that snapshot.

A publish renders only the formats scrapers have asked for lately (in the last
``KEEP_FORMAT_POLLS`` polls): each scraper asks in one way (Prometheus for OpenMetrics, curl
for the text format), so a poll renders what is read, usually one format, and none before
anything asked. A request in a format not rendered for the poll has it rendered from the
snapshot, kept for the rest of that poll, and rendered by the publishes that follow. That
render, and a ``?name[]=`` filter, read every family, so ``reply_now()`` leaves them to
``reply()`` (a worker thread, see web/routes.py).

The per-process series (prometheus_client's process, platform and GC collectors) change
between polls and are read at each scrape, as every exporter reads them: rendered from their
own registry by the scrape's encoder and appended. OpenMetrics ends with one ``# EOF``: the
poll's part is kept without it, and the per-process part (rendered even when that registry
is empty) brings it.

For the same reason a gzipped body is compressed at each scrape, whole, as one gzip member
(``gzip.compress``): clients that read only the first member (httpx does) get every byte.
``GZIP_LEVEL`` is low because the body is compressed anew for every scrape; docs/benchmarks.md
has the measurement.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

Encoder = Callable[[Collector], bytes]

# Formats rendered for one poll: each scraper asks in one way, so a handful covers every real
# one; past them, a request in another format gets a render of its own.
MAX_VARIANTS = 8
# A format not asked for in this many polls is no longer rendered (a scraper that stopped, a
# format asked for once): ten polls are minutes at the intervals in use, longer than a
# Prometheus waits between scrapes. A scrape rarer than that pays for its own render.
KEEP_FORMAT_POLLS = 10
# zlib's fastest level: the body is compressed at every scrape, and a higher level makes it
# only slightly smaller.
GZIP_LEVEL = 1
OPENMETRICS = "application/openmetrics-text"
_EOF = b"# EOF\n"


class Reply(NamedTuple):
    """What ``/metrics`` answers: the body and the two headers that describe it."""

    body: bytes
    content_type: str
    content_encoding: str | None  # "gzip", or None for identity


class _Reading(Collector):
    """The families of one reading of a registry, served as they were read."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


@dataclass(frozen=True)
class _Published:
    """One poll: its snapshot, and its part of the body in each format published."""

    snapshot: CollectorRegistry
    parts: Mapping[str, bytes]  # by content type, OpenMetrics without its # EOF


def _poll_part(content_type: str, body: bytes) -> bytes:
    """A body that the per-process part will follow: OpenMetrics without its ``# EOF``."""
    if content_type.startswith(OPENMETRICS):
        return body.removesuffix(_EOF)
    return body


class PublishedExposition:
    """The exposition of the last published poll, plus the per-process series of now.

    ``registry`` holds what polls change; ``process_registry`` (None leaves them out) the
    per-process collectors, read at each scrape.
    """

    def __init__(
        self, registry: CollectorRegistry, process_registry: CollectorRegistry | None = None
    ) -> None:
        self._registry = registry
        # An empty registry renders nothing but OpenMetrics' # EOF.
        self._process = process_registry if process_registry is not None else CollectorRegistry()
        self._lock = threading.Lock()
        self._polls = 0  # publishes so far
        # Every format asked for lately, by content type: its encoder and the last poll
        # (count of publishes) during which it was asked for.
        self._asked: dict[str, tuple[Encoder, int]] = {}
        self._published = _Published(CollectorRegistry(), {})
        self.publish()

    def publish(self) -> None:
        """Read the registry once and render every format asked for lately from that reading.

        Scrapes serve it from here on: the formats cannot differ, and every one is of
        this poll.

        All or nothing: should reading or rendering raise, scrapes keep getting the last
        publish, every format alike (the new one is put in place in one assignment, last).
        """
        snapshot = CollectorRegistry(auto_describe=True)
        snapshot.register(_Reading(list(self._registry.collect())))
        with self._lock:
            self._polls += 1
            self._asked = {
                content_type: asked
                for content_type, asked in self._asked.items()
                if self._polls - asked[1] <= KEEP_FORMAT_POLLS
            }
            formats = dict(self._asked)
        parts = {
            content_type: _poll_part(content_type, encoder(snapshot))
            for content_type, (encoder, _) in formats.items()
        }
        with self._lock:  # a scrape sees this poll or the last, never a mix
            self._published = _Published(snapshot, parts)

    def reply_now(
        self, accept: str | None = None, accept_encoding: str | None = None, query: str = ""
    ) -> Reply | None:
        """The body from the published bytes, or None if it must be rendered for the request.

        Never waits on a poll and reads only the per-process series, so the server answers
        it on its event loop.
        """
        if query and parse_qs(query).get("name[]"):
            return None
        encoder, content_type = choose_encoder(accept or "")
        part = self._published.parts.get(content_type)
        if part is None:
            return None
        self._ask(content_type, encoder)
        return _reply(part + encoder(self._process), content_type, accept_encoding)

    def reply(
        self, accept: str | None = None, accept_encoding: str | None = None, query: str = ""
    ) -> Reply:
        """The body for a scrape with these headers and query string."""
        published = self.reply_now(accept, accept_encoding, query)
        if published is not None:
            return published
        encoder, content_type = choose_encoder(accept or "")
        names = parse_qs(query).get("name[]")
        if names:
            snapshot = self._published.snapshot.restricted_registry(names)
            body = _poll_part(content_type, encoder(snapshot))
            body += encoder(self._process.restricted_registry(names))
        else:
            body = self._first_render(content_type, encoder) + encoder(self._process)
        return _reply(body, content_type, accept_encoding)

    def text(self) -> bytes:
        """The plain Prometheus text format, as a scraper that asks for nothing gets it."""
        return self.reply().body

    def _ask(self, content_type: str, encoder: Encoder) -> None:
        with self._lock:
            if content_type in self._asked or len(self._asked) < MAX_VARIANTS:
                self._asked[content_type] = (encoder, self._polls)

    def _first_render(self, content_type: str, encoder: Encoder) -> bytes:
        """The poll's part in a format it has not rendered, kept for the rest of the poll."""
        published = self._published
        part = _poll_part(content_type, encoder(published.snapshot))
        self._ask(content_type, encoder)
        with self._lock:
            # Unless a publish came in between: then this part is of the poll before.
            if self._published is published and len(published.parts) < MAX_VARIANTS:
                parts = {**published.parts, content_type: part}
                self._published = _Published(published.snapshot, parts)
        return part


def _reply(body: bytes, content_type: str, accept_encoding: str | None) -> Reply:
    if not gzip_accepted(accept_encoding or ""):
        return Reply(body, content_type, None)
    # No time in the header: the same body always compresses to the same bytes.
    return Reply(gzip.compress(body, GZIP_LEVEL, mtime=0), content_type, "gzip")
