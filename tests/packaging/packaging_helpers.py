"""Shared pieces of the packaging tests: where things are, the chart's scenarios and its
rendering, a small Dockerfile parser, and how the image's virtual environment runs."""

from __future__ import annotations

import socket
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_SOURCE = REPO / "helm" / "notte-exporter"
DOCKERFILE = REPO / "Dockerfile"
RELEASE = "notte"
NAMESPACE = "monitoring"
# A current Kubernetes release that kubernetes-validate ships strict schemas for.
KUBERNETES_VERSION = "1.33.0"
# The job name the bundle's rules and dashboards select (CONTRACT.md).
JOB_NAME = "notte-exporter"

# Stand-ins for the generated files the chart reads, used only while the generator
# (`python -m mixin`) has not written them yet. The alert carries Prometheus templates so
# that a test proves Helm passes them through untouched.
PLACEHOLDER_RULES = textwrap.dedent(
    """\
    groups:
      - name: notte-sessions.rules
        rules:
          - record: job:notte_sessions_active:sum
            expr: sum by (job) (notte_sessions_active{job="notte-exporter"})
      - name: notte-exporter
        rules:
          - alert: NotteExporterDown
            expr: |
              up{job="notte-exporter"} == 0
                or notte_up{job="notte-exporter"} == 0
            for: 5m
            labels:
              severity: critical
            annotations:
              summary: notte-exporter cannot reach the Notte API
              description: '{{ $labels.instance }} reports notte_up={{ $value }}.'
    """
)
PLACEHOLDER_DASHBOARDS = {
    "notte-sessions.json": {"title": "Notte sessions", "uid": "notte-sessions", "panels": []},
    "notte-exporter.json": {"title": "Notte exporter", "uid": "notte-exporter", "panels": []},
}


def scenario_files() -> dict[str, Path]:
    """The chart's CI scenarios by name (``existing-secret`` for ci/existing-secret-values.yaml)."""
    return {
        path.name.removesuffix("-values.yaml"): path
        for path in sorted((CHART_SOURCE / "ci").glob("*-values.yaml"))
    }


SCENARIOS = ["default", *scenario_files()]


def scenario_values(name: str) -> dict[str, Any]:
    """Values of a scenario: none for ``default``, else the content of its ci/ file."""
    if name == "default":
        return {}
    loaded: dict[str, Any] = yaml.safe_load(scenario_files()[name].read_text()) or {}
    return loaded


@dataclass(frozen=True)
class Rendered:
    """One rendering of the chart: its Kubernetes objects and its NOTES.txt."""

    objects: list[dict[str, Any]]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]

    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("Deployment")["spec"]["template"]["spec"]
        return spec

    def container(self) -> dict[str, Any]:
        containers = self.pod_spec()["containers"]
        assert len(containers) == 1
        container: dict[str, Any] = containers[0]
        return container

    def args(self) -> list[str]:
        return [str(arg) for arg in self.container()["args"]]

    def flag(self, name: str) -> str | None:
        """Value of the last ``--name=value`` argument (the one the exporter uses)."""
        values = [arg.partition("=")[2] for arg in self.args() if arg.startswith(f"--{name}=")]
        return values[-1] if values else None


def package_version() -> str:
    """The Python package's version, read from its source without importing it."""
    init = REPO / "exporter" / "notte_exporter" / "__init__.py"
    for line in init.read_text().splitlines():
        if line.startswith("__version__"):
            return line.partition("=")[2].strip().strip("\"'")
    raise AssertionError("no __version__ in notte_exporter/__init__.py")


# --- Dockerfile ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


@dataclass(frozen=True)
class ParsedDockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)


def parse_dockerfile(text: str) -> ParsedDockerfile:
    """Split a Dockerfile into instructions (continuations joined, comments dropped) grouped
    by stage. Enough of the grammar for this project's own Dockerfile."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            parts = arguments.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif not stages and keyword == "ARG":
            key, _, default = arguments.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return ParsedDockerfile(global_args=global_args, stages=stages)


def copied_sources(stage: Stage) -> list[str]:
    """Build-context sources of a stage's ``COPY`` instructions (not ``COPY --from``)."""
    sources: list[str] = []
    for arguments in stage.all("COPY"):
        if "--from=" in arguments:
            continue
        parts = [part for part in arguments.split() if not part.startswith("--")]
        sources.extend(parts[:-1])
    return sources


# --- The image, rebuilt without Docker ----------------------------------------------------


def image_environment(venv: Path) -> dict[str, str]:
    """The environment the image gives the exporter (the Dockerfile's ENV). Nothing is
    inherited, so no key or development setting of this machine leaks into a run."""
    return {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
    }


def run_exporter(
    venv: Path,
    *args: str,
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script the way the image's ENTRYPOINT does."""
    return subprocess.run(
        [str(venv / "bin" / "notte-exporter"), *args],
        env=image_environment(venv),
        cwd=cwd or venv,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A port nothing listens on right now (bound to 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
