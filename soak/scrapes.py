"""The soak's scrapes, kept as one OpenMetrics file with timestamps for ``promtool tsdb``.

OpenMetrics wants each metric family's samples together, in time order, while scrapes come
one instant at a time: each family is appended to a file of its own as the run goes, and
``close`` joins them under their ``# TYPE`` lines and ends the whole with ``# EOF``. Every
family is declared ``unknown`` (the type matters nothing to the rules), and every sample gets
the ``job`` and ``instance`` labels a Prometheus scrape would add. Only the families the
bundle's rules read are kept.
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
TARGET_LABELS = {"job": "notte", "instance": "soak:9977"}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class ScrapeWriter:
    """Collects scrapes (text expositions at given instants) into one OpenMetrics file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._dir = Path(tempfile.mkdtemp(prefix="soak-scrapes-"))
        self._files: dict[str, IO[str]] = {}
        self.samples = 0

    def write(self, exposition: bytes, at: datetime) -> None:
        stamp = f"{at.timestamp():.3f}"
        for family in text_string_to_metric_families(exposition.decode()):
            for sample in family.samples:
                if not sample.name.startswith(KEPT_PREFIXES) or sample.name.endswith(
                    ("_bucket", "_created")
                ):
                    continue
                labels = {**sample.labels, **TARGET_LABELS}
                rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
                self._file(sample.name).write(
                    f"{sample.name}{{{rendered}}} {sample.value!r} {stamp}\n"
                )
                self.samples += 1

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
