"""The soak's scrapes, kept as OpenMetrics files with timestamps for ``promtool tsdb``.

OpenMetrics wants each metric family's samples together, in time order, while scrapes come
one instant at a time: each family is appended to a file of its own as the run goes, and
each chunk of the run (a simulated day) is then joined under their ``# TYPE`` lines into one
file of the directory, ended with ``# EOF``. A file per day, not one for the run: promtool
reads its whole input once for every 2-hour block it writes, so one file's cost grows with
the square of the run, and a finished day can be turned into blocks while the next runs
(``on_chunk``). Every
family is declared ``unknown`` (the type matters nothing to the rules), and every sample gets
the ``job`` and ``instance`` labels a Prometheus scrape would add. Only the families the
bundle's rules read are kept.

A counter's label set is left out while it is still 0 (most of the hundred close-reason
combinations never move): the file stays a size promtool reads in seconds. The scrape before
its first increase then gets its 0, so that ``increase()`` sees that increase as Prometheus
would have.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import yaml

# The bundle's rules, as generated (make generate).
RULES = Path(__file__).resolve().parent.parent / "prometheus/rules/notte-exporter.rules.yaml"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# The job the bundle's rules select (mixin/config.py).
TARGET_LABELS = {"job": "notte-exporter", "instance": "soak:9977"}


def kept_names(rules_file: Path = RULES) -> frozenset[str]:
    """Every name the rules' expressions mention: the sample names a scrape must keep.

    Read from the rules themselves, so that a rule reading a new series gets it kept; words
    of PromQL that are not sample names (``sum``, ``without``, label names) keep nothing.
    """
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    return frozenset(
        name for group in groups for rule in group["rules"] for name in _NAME.findall(rule["expr"])
    )


def escape(value: str) -> str:
    """A label value as OpenMetrics writes it between quotes."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class ScrapeWriter:
    """Collects scrapes (text expositions at given instants) into one OpenMetrics file."""

    def __init__(
        self,
        directory: str,
        *,
        chunk: timedelta = timedelta(days=1),
        on_chunk: Callable[[Path], None] | None = None,
    ) -> None:
        self.path = directory
        Path(directory).mkdir(parents=True, exist_ok=True)
        for old in Path(directory).glob("scrapes-*.om"):
            old.unlink()
        self.chunks: list[Path] = []
        self._chunk = chunk
        self._on_chunk = on_chunk or (lambda _: None)
        self._chunk_end: datetime | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="soak-scrapes-"))
        self._files: dict[str, IO[str]] = {}
        self.samples = 0
        self._moved: set[str] = set()
        self._previous: str | None = None
        self._target = ",".join(f'{k}="{v}"' for k, v in sorted(TARGET_LABELS.items()))

    def write(self, samples: Iterable[tuple[str, dict[str, str], float]], at: datetime) -> None:
        """One scrape at ``at``: its samples (name, labels, value), already the kept ones."""
        if self._chunk_end is None:
            self._chunk_end = at + self._chunk
        elif at >= self._chunk_end:
            self._flush()
            self._chunk_end += self._chunk
        stamp = f"{at.timestamp():.3f}"
        # What Prometheus adds to every scrape that succeeds (NotteExporterDown reads it).
        self._file("up").write(f"up{{{self._target}}} 1.0 {stamp}\n")
        for name, sample_labels, value in samples:
            labels = {**sample_labels, **TARGET_LABELS}
            rendered = ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items()))
            series = f"{name}{{{rendered}}}"
            out = self._file(name)
            if name.endswith("_total") and series not in self._moved:
                if value == 0:
                    continue
                self._moved.add(series)
                if self._previous is not None:
                    out.write(f"{series} 0.0 {self._previous}\n")
            out.write(f"{series} {value!r} {stamp}\n")
            self.samples += 1
        self._previous = stamp

    def _file(self, name: str) -> IO[str]:
        handle = self._files.get(name)
        if handle is None:
            handle = (self._dir / name).open("w")
            self._files[name] = handle
        return handle

    def _flush(self) -> None:
        """Join the chunk's families into the directory's next file, and hand it on."""
        path = Path(self.path) / f"scrapes-{len(self.chunks):03d}.om"
        with path.open("w") as out:
            for name, handle in sorted(self._files.items()):
                handle.close()
                out.write(f"# TYPE {name} unknown\n")
                with (self._dir / name).open() as part:
                    shutil.copyfileobj(part, out)
            out.write("# EOF\n")
        self._files.clear()
        self.chunks.append(path)
        self._on_chunk(path)

    def close(self) -> None:
        if self._files:
            self._flush()
        shutil.rmtree(self._dir)
