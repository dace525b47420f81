"""Fixtures of the packaging tests: the chart rendered by the real Helm engine, the parsed
Dockerfile, and the image's virtual environment rebuilt without Docker (once per session).

A test that uses the Helm engine or the rebuilt venv gets the tier marker of that fixture
(``TIER_OF_FIXTURE``), so it runs in ``make test`` and never in ``make test-fast``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from packaging_helpers import (
    CHART_SOURCE,
    DOCKERFILE,
    NAMESPACE,
    PLACEHOLDER_DASHBOARDS,
    PLACEHOLDER_RULES,
    RELEASE,
    REPO,
    ParsedDockerfile,
    Rendered,
    copied_sources,
    parse_dockerfile,
)

RenderFn = Callable[[dict[str, Any]], Rendered]
TIER_OF_FIXTURE = {"chart_dir": "helm", "image_venv": "image"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # fixturenames is the whole closure: `render` and `chart` bring in `chart_dir`.
    for item in items:
        for fixture in TIER_OF_FIXTURE.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(TIER_OF_FIXTURE[fixture])


@pytest.fixture(scope="session")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart whose files/ holds the generated rules and dashboards. Until
    `python -m mixin` has written its chart copies, the copy takes them from the
    generator's other outputs (the same text), or else from placeholders; the chart's own
    files/ is never written."""
    chart = tmp_path_factory.mktemp("chart") / "notte-exporter"
    shutil.copytree(CHART_SOURCE, chart)
    rules = chart / "files" / "notte-exporter.rules.yaml"
    if not rules.exists():
        rules.parent.mkdir(parents=True, exist_ok=True)
        generated = REPO / "prometheus" / "rules" / "notte-exporter.rules.yaml"
        rules.write_text(generated.read_text() if generated.exists() else PLACEHOLDER_RULES)
    dashboards = chart / "files" / "dashboards"
    if not list(dashboards.glob("*.json")):
        dashboards.mkdir(parents=True, exist_ok=True)
        generated_dashboards = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
        for path in generated_dashboards:
            shutil.copy2(path, dashboards / path.name)
        if not generated_dashboards:
            for name, dashboard in PLACEHOLDER_DASHBOARDS.items():
                (dashboards / name).write_text(json.dumps(dashboard, indent=2) + "\n")
    return chart


@pytest.fixture(scope="session")
def chart(chart_dir: Path) -> Iterator[helm.Chart]:
    with helm.Chart.load(chart_dir) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: helm.Chart) -> RenderFn:
    """Render the chart offline with the given values, as `helm template` would (values
    are checked against values.schema.json first)."""

    def _render(values: dict[str, Any]) -> Rendered:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        objects: list[dict[str, Any]] = []
        notes = ""
        for path, text in sorted(manifests.items()):
            if path.endswith("NOTES.txt"):
                notes = text
                continue
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
        return Rendered(objects=objects, notes=notes)

    return _render


@pytest.fixture(scope="session")
def dockerfile() -> ParsedDockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="session")
def image_venv(tmp_path_factory: pytest.TempPathFactory, dockerfile: ParsedDockerfile) -> Path:
    """Do what the Dockerfile's builder stage does, on this machine: copy the same sources
    into a clean directory, `pip wheel` them with their dependencies, create a venv without
    pip and install the project wheel into it offline from those wheels."""
    work = tmp_path_factory.mktemp("image")
    context = work / "src"
    context.mkdir()
    # The same exclusions as .dockerignore, so the build sees what `docker build` would.
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for source in copied_sources(dockerfile.stage("builder")):
        path = REPO / source
        if not path.exists():
            pytest.fail(
                f"the Dockerfile copies {source}, which does not exist: docker build would fail"
            )
        if path.is_dir():
            shutil.copytree(path, context / source, ignore=ignore)
        else:
            shutil.copy2(path, context / source)
    wheels = work / "wheels"
    venv = work / "opt-venv"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    try:
        _run([*pip, "wheel", "--wheel-dir", str(wheels), str(context)])
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        project_wheels = sorted(wheels.glob("notte_exporter-*.whl"))
        assert len(project_wheels) == 1, project_wheels
        python = str(venv / "bin" / "python")
        wheel = str(project_wheels[0])
        _run(
            [*pip, "--python", python, "install", "--no-index", "--find-links", str(wheels), wheel]
        )
    except subprocess.CalledProcessError as error:
        pytest.fail(f"building the image's venv failed: {error.cmd}\n{error.stderr}")
    return venv


# Not for pip as the Dockerfile's builder runs it: the package index is not vouched for by
# the throwaway CA the tests trust (tests/conftest.py), and a PYTHONPATH holding the source
# tree's egg-info makes pip take the project for installed already.
BUILD_ENVIRONMENT_LEAVES_OUT = ("SSL_CERT_FILE", "PYTHONPATH")


def _run(command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in BUILD_ENVIRONMENT_LEAVES_OUT}
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=110, env=env)
