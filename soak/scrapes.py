"""The soak's scrapes, kept as one OpenMetrics file with timestamps for ``promtool tsdb``.

OpenMetrics wants each metric family's samples together, in time order, while scrapes come
one instant at a time: each family is appended to a file of its own as the run goes, and
``close`` joins them under their ``# TYPE`` lines and ends the whole with ``# EOF``. Every
family is declared ``unknown`` (the type matters nothing to the rules), and every sample gets
the ``job`` and ``instance`` labels a Prometheus scrape would add. Only the families the
bundle's rules read are kept.

A counter's label set is left out while it is still 0 (most of the hundred close-reason
combinations never move): the file stays a size promtool reads in seconds. The scrape before
its first increase then gets its 0, so that ``increase()`` sees that increase as Prometheus
would have.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import IO

from prometheus_client.parser import text_string_to_metric_families

# Prefixes of the sample names the rules read (prometheus/rules/notte-exporter.rules.yaml).
KEPT_PREFIXES = (
    "notte_up",
    "notte_api_rate_limit_",
    "notte_exporter_last_poll_success_timestamp_seconds",
    "notte_exporter_poll_failures_total",
    "notte_exporter_polls_total",
    "notte_session_created_timestamp_seconds",
    "notte_session_info",
    "notte_sessions_",
    "notte_usage_",
    "notte_reaper_",
)
# The job the bundle's rules select (mixin/config.py).
TARGET_LABELS = {"job": "notte-exporter", "instance": "soak:9977"}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class ScrapeWriter:
    """Collects scrapes (text expositions at given instants) into one OpenMetrics file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._dir = Path(tempfile.mkdtemp(prefix="soak-scrapes-"))
        self._files: dict[str, IO[str]] = {}
        self.samples = 0
        self._moved: set[str] = set()
        self._previous: str | None = None
        self._target = ",".join(f'{k}="{v}"' for k, v in sorted(TARGET_LABELS.items()))

    def write(self, exposition: bytes, at: datetime) -> None:
        stamp = f"{at.timestamp():.3f}"
        # What Prometheus adds to every scrape that succeeds (NotteExporterDown reads it).
        self._file("up").write(f"up{{{self._target}}} 1.0 {stamp}\n")
        for family in text_string_to_metric_families(exposition.decode()):
            for sample in family.samples:
                if not sample.name.startswith(KEPT_PREFIXES) or sample.name.endswith(
                    ("_bucket", "_created")
                ):
                    continue
                labels = {**sample.labels, **TARGET_LABELS}
                rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
                series = f"{sample.name}{{{rendered}}}"
                out = self._file(sample.name)
                if sample.name.endswith("_total") and series not in self._moved:
                    if sample.value == 0:
                        continue
                    self._moved.add(series)
                    if self._previous is not None:
                        out.write(f"{series} 0.0 {self._previous}\n")
                out.write(f"{series} {sample.value!r} {stamp}\n")
                self.samples += 1
        self._previous = stamp

    def _file(self, name: str) -> IO[str]:
        handle = self._files.get(name)
        if handle is None:
            handle = (self._dir / name).open("w")
            self._files[name] = handle
        return handle

    def close(self) -> None:
        with Path(self.path).open("w") as out:
            for name, handle in sorted(self._files.items()):
                handle.close()
                out.write(f"# TYPE {name} unknown\n")
                with (self._dir / name).open() as part:
                    shutil.copyfileobj(part, out)
            out.write("# EOF\n")
        shutil.rmtree(self._dir)
