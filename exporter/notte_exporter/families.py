"""Metric families rendered one by one, rendered again only in what changed.

Both of prometheus_client's encoders (the text format and OpenMetrics) render a registry
family by family and join the results; OpenMetrics then closes the body with ``# EOF``. No
family's bytes depend on another's, so rendering each family alone and joining the bytes
gives exactly what the encoder renders for all of them. A ``FamilyBytes`` keeps, for one
format, each family as it rendered it last time, and for each family of a new reading:

* reuses its bytes if it is equal (most families of a registry do not change from one read
  to the next: series that stay at 0, histograms that only move when a session ends);
* refills its ``Template`` if only sample values changed (a poll's own counters and
  durations change at every poll; gauges of live sessions often);
* otherwise (a new family, a new label set, other help) has the encoder render it.

A ``Template`` is the encoder's own rendering of the family with placeholder values whose
text appears nowhere else, cut at those texts; filling it puts ``floatToGoString(value)``
between the pieces, which is the text both encoders write for a sample's value (every
escaping). A rendering that cannot be cut cleanly gives no template (the family is then
rendered by the encoder whenever it changes).

A family's identity has two parts. Its shape: name, help, type, unit and every sample's
name and labels (compared as dicts: both encoders sort a sample's labels). Its values, as
their bit patterns: ``==`` confuses ``-0.0`` with ``0.0``, which print apart, while ``1``
and ``1.0`` rightly compare equal (both encoders print ``float(value)``). That holds for
plain samples (no timestamp, exemplar or native histogram); any other family has every
sample in its shape, each part by ``repr``, as ``==`` also confuses what OpenMetrics prints
as it is (a timestamp of ``1`` and of ``1.0``), and has no template. The labels are held,
not copied: a collector that changed a sample's labels in place after yielding it would
defeat this; prometheus_client's metrics and families build a new dict for every sample.

For 10 000 sessions' registry (31 families, ~440 samples), identities cost ~0.2-0.3 ms
cold, against ~1.5 ms to render it all as text and ~2.8 ms as OpenMetrics (prometheus_client
escapes every label name and value character by character); filling a template costs
~0.4 us a value against ~3 (text) and ~6 (OpenMetrics) to render a sample, warm.

Memory stays bounded by what is rendered: a ``FamilyBytes`` keeps only the families of its
last render, one entry (bytes, template, identity) per family name.
"""

from __future__ import annotations

import copy
import re
from array import array
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from operator import attrgetter
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

Encoder = Callable[[Collector], bytes]

OPENMETRICS = "application/openmetrics-text"
EOF = b"# EOF\n"
# The text both encoders write for a sample's value (untyped in prometheus_client).
value_text: Callable[[float], str] = floatToGoString

_VALUE = attrgetter("value")
_SHAPE = attrgetter("name", "labels")
_EXTRAS = attrgetter("timestamp", "exemplar", "native_histogram")
_PLAIN = frozenset({(None, None, None)})


class Identity(NamedTuple):
    """Everything an encoder reads from a family, in two parts: its shape and its values."""

    # Name, help, type, unit and every sample's name and labels; for a family that is not
    # plain, every sample whole, by repr.
    shape: tuple[Any, ...]
    # A plain family's values, in order (None when they are in ``shape``), and their bit
    # patterns, which tell -0.0 from 0.0 where == does not.
    values: array[float] | None
    bits: bytes = b""


class Collected(Collector):
    """Metric families already read from a registry, to render more than once."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families

    @cached_property
    def identities(self) -> list[Identity]:
        """Each family's identity, in order: worked out once for every format rendered."""
        return [identity(metric) for metric in self._families]


def without_eof(content_type: str, body: bytes) -> bytes:
    """A body that more will follow: OpenMetrics without its closing ``# EOF``."""
    if content_type.startswith(OPENMETRICS) and body.endswith(EOF):
        return body[: -len(EOF)]
    return body


def identity(metric: Metric) -> Identity:
    """Everything an encoder reads from a family, comparable with ``==``."""
    header = (metric.name, metric.documentation, metric.type, metric.unit)
    samples = metric.samples
    if _PLAIN.issuperset(map(_EXTRAS, samples)):
        try:
            values = array("d", map(_VALUE, samples))
        except (TypeError, ValueError, OverflowError):
            pass  # what the encoders cannot print either: left to the strict comparison
        else:
            return Identity((header, tuple(map(_SHAPE, samples))), values, values.tobytes())
    return Identity((header, tuple(_strict(sample) for sample in samples)), None)


def _strict(sample: Sample) -> tuple[Any, ...]:
    return (
        sample.name,
        tuple(sample.labels.items()),
        repr(sample.value),
        repr(sample.timestamp),
        repr(sample.exemplar),
        repr(sample.native_histogram),
    )


def _placeholder(index: int) -> float:
    """A value whose text, as the encoders write it, appears nowhere else in a rendering.

    All have the same length and differ in their digits, so none is inside another, and no
    two can overlap (the only other ``-`` of one is in ``e-300``).
    """
    return float(f"-1.{index:06d}1e-300")


_PLACEHOLDERS = re.compile(r"-1\.[0-9]{6}1e-300")


class Template:
    """A rendering with holes where its sample values go."""

    def __init__(self, pieces: Sequence[str]) -> None:
        self._first, self._rest = pieces[0], pieces[1:]

    @classmethod
    def of(
        cls, families: Callable[[Sequence[float]], Sequence[Metric]], count: int, encoder: Encoder
    ) -> Template | None:
        """The template of the families that ``count`` values make, or None if the rendering
        cannot be cut cleanly."""
        if count > 999_999:
            return None
        holes = [value_text(_placeholder(index)) for index in range(count)]
        text = encoder(Collected(families([_placeholder(i) for i in range(count)])))
        rendered = text.decode("utf-8")
        # One pass over the text (a family may hold a thousand sessions' series): every text
        # shaped like a placeholder, which must be each hole exactly once and in order.
        found = list(_PLACEHOLDERS.finditer(rendered))
        if [match.group() for match in found] != holes:
            return None
        starts = [0, *(match.end() for match in found)]
        ends = [*(match.start() for match in found), len(rendered)]
        return cls([rendered[start:end] for start, end in zip(starts, ends, strict=True)])

    def fill(self, values: Sequence[float]) -> bytes:
        parts = [self._first]
        for value, piece in zip(values, self._rest, strict=True):
            parts.append(value_text(value))
            parts.append(piece)
        return "".join(parts).encode("utf-8")


def _with_values(metric: Metric) -> Callable[[Sequence[float]], Sequence[Metric]]:
    """``metric`` as it would be with other sample values."""

    def families(values: Sequence[float]) -> Sequence[Metric]:
        changed = copy.copy(metric)
        changed.samples = [
            sample._replace(value=value)
            for sample, value in zip(metric.samples, values, strict=True)
        ]
        return (changed,)

    return families


class _Rendered(NamedTuple):
    """A family as last rendered: its identity, its bytes, its template if it has one."""

    identity: Identity
    body: bytes
    # Made the first time the family's values alone change: a family that changes shape at
    # every poll (the oldest sessions, by id) never pays for one. None until then, or when
    # its rendering could not be cut (``tried`` tells which).
    template: Template | None = None
    tried: bool = False


class FamilyBytes:
    """One format's rendering of a registry's families, reusing what did not change.

    Renders may run on several threads at once: each builds its own table and replaces the
    last one whole, so at worst two of them render the same family.
    """

    def __init__(self, content_type: str, encoder: Encoder) -> None:
        self._content_type = content_type
        self._encoder = encoder
        self._rendered: dict[str, _Rendered] = {}

    def render(self, reading: Collected) -> bytes:
        """What the encoder renders for ``reading``, without OpenMetrics' ``# EOF``."""
        last = self._rendered
        rendered: dict[str, _Rendered] = {}
        parts = []
        for metric, current in zip(reading.collect(), reading.identities, strict=True):
            cached = last.get(metric.name)
            if cached is None or cached.identity.shape != current.shape:
                cached = _Rendered(current, self._encode(Collected((metric,))))
            elif cached.identity.bits != current.bits:
                cached = self._refilled(metric, current, cached)
            rendered[metric.name] = cached
            parts.append(cached.body)
        # Only this reading's families are kept: a family that is gone is forgotten.
        self._rendered = rendered
        return b"".join(parts)

    def _refilled(self, metric: Metric, current: Identity, last: _Rendered) -> _Rendered:
        """A family whose values alone changed."""
        values, template = current.values, last.template
        if values is None:  # not plain: its values are in its shape, so this does not happen
            return _Rendered(current, self._encode(Collected((metric,))))
        if not last.tried:
            template = Template.of(_with_values(metric), len(values), self._encode)
        if template is None:
            return _Rendered(current, self._encode(Collected((metric,))), None, True)
        return _Rendered(current, template.fill(values), template, True)

    def _encode(self, families: Collector) -> bytes:
        return without_eof(self._content_type, self._encoder(families))
