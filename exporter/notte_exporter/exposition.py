"""The bytes of ``/metrics``, rendered once per poll and served as they are to every scrape.

Everything the exporter knows changes only when a poll ends, so ``publish()`` (called by the
poll thread after each poll, successful or not) renders the registry then: the Prometheus
text format and OpenMetrics, each also gzip-compressed. A scrape picks the bytes its
``Accept`` and ``Accept-Encoding`` ask for and appends only the per-process series (process
CPU and memory, platform, GC), which change between polls and are rendered for each scrape
from their own registry. Two things follow:

* a scrape costs about what serving static bytes costs, however many sessions there are;
* a scrape sees one poll, whole: the snapshot, the poll counters and the lifecycle counts
  are read in one go by the thread that just changed them, never half-way through a poll.

A poll changes few families (its own counters and durations, what sessions started or
ended), so each format keeps every family as last rendered and ``publish()`` renders again
only what changed since the last one (``families.py``): the same bytes as rendering the
whole registry, for about a third of the CPU at 10 000 sessions (``bench/publish_cost.py``).

OpenMetrics ends with a single ``# EOF``: the poll's part is stored without it and the
per-process part closes the body with it. The per-process part is rendered through
templates the scrape's own encoder cut (``perprocess.py``, ``families.py``): the same bytes,
for ~27 us in a tight loop instead of ~65.

The gzip of the poll's part is compressed once, as raw deflate blocks flushed to a byte
boundary, none of them final. A scrape appends its per-process part as *stored* (not
compressed) deflate blocks, the last one final, and wraps both in one gzip member (header,
blocks, CRC-32 and length of the whole): a deflate stream is just a sequence of blocks, so
these concatenate, as pigz joins what it compresses in parallel, and it stays one member,
so clients that read only the first (httpx does) get the whole body. Storing costs a CRC
of a few KB; compressing them cost ~60 us inside the running server (copying the poll's
compressor, before: 50-130 us), to save ~1.5 KB of a gzipped body of ~8 KB.

Requests this cache cannot answer as published are rendered live from the registries, as
prometheus_client would: a ``?name[]=`` filter, and a format variant (``Accept`` parameters
such as ``escaping``) not seen before. A variant is remembered (up to ``MAX_VARIANTS``) and
rendered at every later publish, so a Prometheus that always asks the same way is served
from the cache from its second poll on.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .families import EOF, OPENMETRICS, Collected, Encoder, FamilyBytes
from .perprocess import ProcessSeries

# Format variants remembered for pre-rendering: each Prometheus version asks in one way, so
# a handful covers every real scraper; a client inventing new ones only gets live renders.
MAX_VARIANTS = 8
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# A gzip member's header as zlib writes it: deflate, no name, no time, made on Unix.
_GZIP_HEADER = bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3])
# zlib's fast levels (1-3) compress the poll's ~41 KB at 10 000 sessions in half the CPU of
# the default 6 (0.29 against 0.59 ms for both formats, bench/publish_cost.py); 3 makes a
# body ~10% larger than 6 does (5.1 against 4.7 KB), 1 ~14% and marks its header as
# "fastest", which _GZIP_HEADER does not.
GZIP_LEVEL = 3
_STORED_MAX = 0xFFFF  # bytes in one stored deflate block


class Reply(NamedTuple):
    """What ``/metrics`` answers: the body and the two headers that describe it."""

    body: bytes
    content_type: str
    content_encoding: str | None  # "gzip", or None for identity


@dataclass(frozen=True)
class _Rendered:
    """One format of one poll: the poll's bytes, plain and as an unfinished gzip member."""

    plain: bytes
    # The gzip header and the poll's deflate blocks, none final, ending on a byte boundary.
    gzip_prefix: bytes
    crc: int

    @classmethod
    def of(cls, body: bytes) -> _Rendered:
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        blocks = compressor.compress(body) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return cls(body, _GZIP_HEADER + blocks, zlib.crc32(body))

    def finish(self, tail: bytes, gzipped: bool) -> bytes:
        if not gzipped:
            return self.plain + tail
        size = (len(self.plain) + len(tail)) & 0xFFFFFFFF
        trailer = struct.pack("<II", zlib.crc32(tail, self.crc), size)
        return b"".join((self.gzip_prefix, *_stored_blocks(tail), trailer))


def _stored_blocks(data: bytes) -> list[bytes]:
    """``data`` as stored deflate blocks, the last one final (RFC 1951, section 3.2.4).

    Each starts on a byte boundary: a header byte (BFINAL, BTYPE 00, padding), then LEN and
    its complement NLEN (little-endian), then the bytes as they are.
    """
    blocks = []
    starts = range(0, len(data), _STORED_MAX) if data else range(1)
    for start in starts:
        chunk = data[start : start + _STORED_MAX]
        final = start + _STORED_MAX >= len(data)
        blocks.append(struct.pack("<BHH", final, len(chunk), len(chunk) ^ 0xFFFF))
        blocks.append(chunk)
    return blocks


class _Collects(Protocol):
    def collect(self) -> Iterable[Metric]: ...


class _Both(Collector):
    """Several registries read as one, for live renders."""

    def __init__(self, collectors: Sequence[_Collects]) -> None:
        self._collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


class PublishedExposition:
    """The exposition of the last published poll, plus live per-process series.

    ``registry`` holds what polls change; ``process_registry`` (None turns them off) the
    per-process collectors rendered at each scrape.
    """

    def __init__(
        self, registry: CollectorRegistry, process_registry: CollectorRegistry | None = None
    ) -> None:
        self._registry = registry
        self._process = process_registry
        self._process_series = None if process_registry is None else ProcessSeries(process_registry)
        self._lock = threading.Lock()
        text_encoder, text_type = choose_encoder("")
        om_encoder, om_type = choose_encoder(OPENMETRICS)
        self._formats = {
            text_type: FamilyBytes(text_type, text_encoder),
            om_type: FamilyBytes(om_type, om_encoder),
        }
        self._rendered: Mapping[str, _Rendered] = {}
        self.publish()

    def publish(self) -> None:
        """Render every known format from the registry now; scrapes serve it from here on.

        The registry is read once and every format rendered from that one reading: the
        formats cannot differ, and reading it (every metric's samples) is a third of what
        rendering one format costs. Each format re-renders only the families that changed
        since the last publish (``families.py``).

        All or nothing: should reading or rendering raise, scrapes keep getting the bytes of
        the last publish, every format alike (what a format kept of this reading is keyed
        by each family's identity, so it is only ever reused for that same family).
        """
        with self._lock:
            formats = dict(self._formats)
        reading = Collected(list(self._registry.collect()))
        rendered = {
            content_type: _Rendered.of(families.render(reading))
            for content_type, families in formats.items()
        }
        with self._lock:
            self._rendered = rendered  # one assignment: a scrape sees this poll or the last

    def reply(
        self, accept: str | None = None, accept_encoding: str | None = None, query: str = ""
    ) -> Reply:
        """The body for a scrape with these headers and query string."""
        published = self.reply_now(accept, accept_encoding, query)
        if published is not None:
            return published
        encoder, content_type = choose_encoder(accept or "")
        gzipped = gzip_accepted(accept_encoding or "")
        names = parse_qs(query).get("name[]")
        body = self._live(encoder, names or None, gzipped)
        return Reply(body, content_type, "gzip" if gzipped else None)

    def reply_now(
        self, accept: str | None = None, accept_encoding: str | None = None, query: str = ""
    ) -> Reply | None:
        """The body from the published bytes, or None if it must be rendered live.

        Cheap and never waiting on a poll (only the per-process series are read), so the
        server answers it on its event loop; a live render (a ``?name[]=`` filter, a format
        variant not published yet) reads the whole registry and is left to ``reply()``.
        """
        if query and parse_qs(query).get("name[]"):
            return None
        encoder, content_type = choose_encoder(accept or "")
        with self._lock:
            rendered = self._rendered.get(content_type)
            if rendered is None and len(self._formats) < MAX_VARIANTS:
                self._formats.setdefault(content_type, FamilyBytes(content_type, encoder))
        if rendered is None:
            return None
        gzipped = gzip_accepted(accept_encoding or "")
        body = rendered.finish(self._tail(content_type, encoder), gzipped)
        return Reply(body, content_type, "gzip" if gzipped else None)

    def text(self) -> bytes:
        """The plain Prometheus text format, as a scraper that asks for nothing gets it."""
        return self.reply().body

    def _tail(self, content_type: str, encoder: Encoder) -> bytes:
        end = EOF if content_type.startswith(OPENMETRICS) else b""
        if self._process_series is None:
            return end
        return self._process_series.render(content_type, encoder) + end

    def _live(self, encoder: Encoder, names: Sequence[str] | None, gzipped: bool) -> bytes:
        registries = [self._registry]
        if self._process is not None:
            registries.append(self._process)
        parts: list[_Collects] = [
            registry if names is None else registry.restricted_registry(names)
            for registry in registries
        ]
        body = encoder(_Both(parts))
        if not gzipped:
            return body
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
        return compressor.compress(body) + compressor.flush()
