"""The bytes of ``/metrics``: a poll's part rendered once per poll, the process's at each scrape.

Everything the exporter knows changes only when a poll ends, so ``publish()`` (called by the
poll thread after each poll, successful or not) reads the registry once, keeps that reading
as the poll's snapshot (a registry of its own) and renders it with prometheus_client's own
encoders, the text format and OpenMetrics. Scrapes serve those bytes. Two things follow:

* a scrape's cost does not grow with the sessions: the poll's part is already rendered;
* a scrape sees one poll, whole: the snapshot, the poll counters and the lifecycle counts
  are read in one go by the thread that just changed them, never half-way through a poll.
  Whatever a scrape asks for (a format, a ``?name[]=`` filter) comes from that snapshot.

The per-process series (prometheus_client's process, platform and GC collectors) change
between polls and are read at each scrape, as every exporter reads them: rendered from their
own registry by the scrape's encoder and appended. OpenMetrics ends with one ``# EOF``: the
poll's part is kept without it, and the per-process part (rendered even when that registry
is empty) brings it.

For the same reason a gzipped body is compressed at each scrape, whole, as one gzip member
(``gzip.compress``): clients that read only the first member (httpx does) get every byte.
``GZIP_LEVEL`` is low because the body is compressed anew for every scrape; docs/benchmarks.md
has the measurement.

A format variant (``Accept`` parameters such as ``escaping``) not published yet, or a
``?name[]=`` filter, is rendered from the snapshot for that request, which ``reply_now()``
leaves to ``reply()`` (a worker thread, see web.py). A variant is remembered (up to
``MAX_VARIANTS``) and rendered at every later publish, so a Prometheus that always asks the
same way is served published bytes from its second poll on.
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

# Format variants remembered for publishing: each Prometheus version asks in one way, so a
# handful covers every real scraper; a client inventing new ones only gets renders of its own.
MAX_VARIANTS = 8
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
        self._formats: dict[str, Encoder] = {}
        for accept in ("", OPENMETRICS):
            encoder, content_type = choose_encoder(accept)
            self._formats[content_type] = encoder
        self._published = _Published(CollectorRegistry(), {})
        self.publish()

    def publish(self) -> None:
        """Read the registry once and render every known format from that reading.

        Scrapes serve it from here on: the formats cannot differ, and every one is of
        this poll.
        """
        snapshot = CollectorRegistry(auto_describe=True)
        snapshot.register(_Reading(list(self._registry.collect())))
        with self._lock:
            formats = dict(self._formats)
        parts = {
            content_type: _poll_part(content_type, encoder(snapshot))
            for content_type, encoder in formats.items()
        }
        self._published = _Published(snapshot, parts)  # one assignment: this poll or the last

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
        return _reply(part + encoder(self._process), content_type, accept_encoding)

    def reply(
        self, accept: str | None = None, accept_encoding: str | None = None, query: str = ""
    ) -> Reply:
        """The body for a scrape with these headers and query string."""
        published = self.reply_now(accept, accept_encoding, query)
        if published is not None:
            return published
        encoder, content_type = choose_encoder(accept or "")
        snapshot = self._published.snapshot
        names = parse_qs(query).get("name[]")
        if names:
            poll: Collector = snapshot.restricted_registry(names)
            process: Collector = self._process.restricted_registry(names)
        else:
            poll, process = snapshot, self._process
            with self._lock:
                if len(self._formats) < MAX_VARIANTS:
                    self._formats.setdefault(content_type, encoder)
        body = _poll_part(content_type, encoder(poll)) + encoder(process)
        return _reply(body, content_type, accept_encoding)

    def text(self) -> bytes:
        """The plain Prometheus text format, as a scraper that asks for nothing gets it."""
        return self.reply().body


def _reply(body: bytes, content_type: str, accept_encoding: str | None) -> Reply:
    if not gzip_accepted(accept_encoding or ""):
        return Reply(body, content_type, None)
    # No time in the header: the same body always compresses to the same bytes.
    return Reply(gzip.compress(body, GZIP_LEVEL, mtime=0), content_type, "gzip")
