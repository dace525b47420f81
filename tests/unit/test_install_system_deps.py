"""scripts/install-system-deps.sh, run on a PATH of stand-ins: which commands are there, an
id that says who runs it, and an apt-get and a service command that only record their calls."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-system-deps.sh"
TEST_COMMANDS = ("prometheus", "promtool", "chromium", "curl", "openssl")
# What the script itself runs, taken from this machine.
TOOLS = ("bash", "mktemp", "rm", "tail")
ROOT_UID, USER_UID = 0, 1000
RECORDER = '#!/bin/sh\necho "${{0##*/}} $* DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> "{log}"\n'
# The stand-in service command says the prometheus service runs, as apt may have started it.
SERVICE = RECORDER + '[ "$1" = prometheus ] || exit 3\n'


class Machine:
    """A directory of commands to run the script with, and what apt-get and service saw."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "calls.log"
        for tool in TOOLS:
            (self.bin / tool).symlink_to(_which(tool))
        self.add("apt-get", RECORDER)
        self.add("service", SERVICE)

    def add(self, name: str, script: str = "#!/bin/sh\n") -> None:
        path = self.bin / name
        path.write_text(script.format(log=self.log))
        path.chmod(0o755)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def run(self, *targets: str, uid: int = ROOT_UID) -> subprocess.CompletedProcess[str]:
        self.add("id", f"#!/bin/sh\necho {uid}\n")
        return subprocess.run(
            [str(self.bin / "bash"), str(SCRIPT), *targets],
            env={"PATH": str(self.bin)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


def _which(name: str) -> str:
    found = shutil.which(name)
    assert found is not None, f"{name} is not installed"
    return found


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def test_nothing_missing_means_no_apt_get_and_no_output(machine) -> None:
    for name in TEST_COMMANDS:
        machine.add(name)
    result = machine.run("test")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert machine.calls() == []


def test_missing_packages_are_installed_in_one_apt_get_and_said_in_one_line(machine) -> None:
    machine.add("curl")
    machine.add("openssl")
    result = machine.run("test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "installing the Debian packages for make test, once: prometheus chromium"
    )
    assert machine.calls()[:2] == [
        "apt-get -o DPkg::Lock::Timeout=600 update -qq DEBIAN_FRONTEND=noninteractive",
        "apt-get -o DPkg::Lock::Timeout=600 install -y -qq prometheus chromium "
        "DEBIAN_FRONTEND=noninteractive",
    ]


def test_the_prometheus_service_apt_started_is_stopped(machine) -> None:
    result = machine.run("test")
    assert "stopped the prometheus service apt started" in result.stdout
    calls = machine.calls()
    assert "service prometheus stop DEBIAN_FRONTEND=noninteractive" in calls
    assert not [call for call in calls if call.startswith("service prometheus-node-exporter stop")]


def test_without_root_it_prints_the_apt_get_line_and_fails_before_any_test(machine) -> None:
    result = machine.run("test", uid=USER_UID)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: missing Debian packages for make test: prometheus chromium curl openssl "
        "(not root, so not installing them)",
        "run as root: apt-get update && apt-get install -y prometheus chromium curl openssl",
    ]
    assert machine.calls() == []


def test_a_failing_apt_get_shows_its_last_lines_and_fails(machine) -> None:
    machine.add("apt-get", "#!/bin/sh\necho 'E: Unable to locate package chromium'\nexit 100\n")
    result = machine.run("test")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "E: Unable to locate package chromium",
        "error: apt-get could not install prometheus chromium curl openssl (its last lines above)",
    ]


def test_an_unknown_target_is_named_in_a_one_line_error(machine) -> None:
    result = machine.run("tset")
    assert result.returncode == 2
    assert result.stderr == "error: no target 'tset' (targets: image test)\n"
