"""The docs' claims checked against the code: a claim nobody checks drifts."""

import re
from pathlib import Path

from notte_exporter.durations import parse_duration
from notte_exporter.options import choices_of, default_of, env_of, flag_of, is_duration
from notte_exporter.settings import Settings

ROOT = Path(__file__).parents[2]
# Command-line words that are not settings.
NOT_SETTINGS = {"--once", "--version", "--help"}


def readme_settings_rows() -> dict[str, list[str]]:
    """The README's settings table: flag (or env for a setting without flag) -> cells."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("| `--") and not line.startswith("| (none)"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        flags = re.findall(r"`(--[^`]+)`", cells[0])
        key = flags[0] if flags else cells[1].strip("`")
        rows[key] = cells
    return rows


def test_the_readme_has_a_row_for_every_setting_with_its_variable_and_default() -> None:
    rows = readme_settings_rows()
    for name, field in Settings.model_fields.items():
        flag = flag_of(name, field)
        row = rows.get(flag or env_of(name, field))
        assert row is not None, f"README lacks a row for {name}"
        assert row[1] == f"`{env_of(name, field)}`", name
        default = default_of(field)
        if default in ("on", "off"):
            assert row[2] == default, name
        elif is_duration(field) and default is not None:
            assert parse_duration(row[2].strip("`")) == field.default, name
        elif default is not None:
            assert row[2] == f"`{default}`", name
        for choice in choices_of(field):
            assert f"`{choice}`" in row[3], (name, choice)


def test_the_readme_lists_no_flag_that_does_not_exist() -> None:
    flags = {flag_of(name, field) for name, field in Settings.model_fields.items()}
    for key in readme_settings_rows():
        if key.startswith("--"):
            assert key in flags | NOT_SETTINGS, key


def test_make_demo_installs_only_the_runtime() -> None:
    import subprocess

    commands = subprocess.run(
        ["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    installs = [line for line in commands.splitlines() if "pip install" in line]
    assert installs, commands
    assert all(line.rstrip().endswith("-e .") for line in installs), installs
    assert "[dev]" not in commands


# Named on purpose as a flag that does not exist (cli.py explains allow_abbrev=False).
NOT_A_FLAG = {"--notte.api-key"}


def test_every_flag_and_variable_named_anywhere_exists() -> None:
    """Messages, help, docs, chart and mixin name settings in prose: each name must be real."""
    fields = Settings.model_fields
    flags = {flag_of(name, field) for name, field in fields.items()} - {None}
    flags |= {f"--no-{flag.removeprefix('--')}" for flag in flags if flag}
    variables = {env_of(name, field) for name, field in fields.items()}
    chart = ROOT / "helm" / "notte-exporter"
    files = [
        *(ROOT / "exporter" / "notte_exporter").rglob("*.py"),
        *(ROOT / "mixin").rglob("*.py"),
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *chart.rglob("*.yaml"),
        *chart.rglob("*.tpl"),
        *chart.rglob("*.txt"),
    ]
    for path in files:
        text = path.read_text()
        for flag in re.findall(r"--(?:no-)?[a-z]+\.[a-z][a-z0-9.-]*[a-z0-9]", text):
            assert flag in flags | NOT_A_FLAG, f"{path.relative_to(ROOT)} names {flag}"
        for variable in re.findall(r"\bNOTTE_[A-Z][A-Z0-9_]*[A-Z0-9]\b", text):
            assert variable in variables, f"{path.relative_to(ROOT)} names {variable}"


def test_the_readme_gives_the_login_queue_its_real_size() -> None:
    from notte_exporter.web.auth import LOGIN_QUEUE

    text = (ROOT / "README.md").read_text()
    section = text.split("## Securing the endpoint", 1)[1].split("\n## ", 1)[0]
    claimed = re.search(r"in turn, at most (\d+) at once", " ".join(section.split()))
    assert claimed is not None, "README no longer says how many logins may wait"
    assert int(claimed.group(1)) == LOGIN_QUEUE
