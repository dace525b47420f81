"""The chart and docs/deployment.md checked against the settings model and the chart itself.

A chart value that passes a flag the exporter does not know, a schema that refuses what the
exporter accepts, a default that differs from the exporter's, or a row of the deployment
guide that names a value or flag that does not exist: each would mislead an operator, and
each is caught here rather than at install time.
"""

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from notte_exporter.cli import build_parser
from notte_exporter.durations import parse_duration
from notte_exporter.options import choices_of, env_of, flag_of, is_duration
from notte_exporter.settings import Settings, load_settings

REPO = Path(__file__).parents[2]
CHART = REPO / "helm" / "notte-exporter"
DEPLOYMENT = (REPO / "docs" / "deployment.md").read_text()
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA_FILE = CHART / "values.schema.json"
FIELDS = Settings.model_fields
FLAG_TO_FIELD = {flag_of(name, field): name for name, field in FIELDS.items()}


def value_at(path: str) -> Any:
    node: Any = VALUES
    for part in path.split("."):
        assert isinstance(node, dict), f"values.yaml has no {path}"
        assert part in node, f"values.yaml has no {path}"
        node = node[part]
    return node


def settings_from_args(args: list[str]) -> tuple[Settings, set[str]]:
    """What the exporter makes of the chart's arguments, and which settings they set."""
    parsed = {k: v for k, v in vars(build_parser().parse_args(args)).items() if k != "once"}
    return load_settings({**parsed, "demo": True, "notte_api_key_file": None}), set(parsed)


def test_every_argument_the_chart_renders_is_a_valid_setting(render) -> None:
    _, given = settings_from_args(render({}).args())
    assert given  # the chart passes its settings as flags


def test_the_charts_defaults_are_the_exporters_defaults(render) -> None:
    settings, given = settings_from_args(render({}).args())
    # The exporter's defaults as it reads them (a size default is text until validated).
    defaults, _ = settings_from_args(["--demo"])
    for name in given - {"notte_api_key_file", "demo", "web_listen_address"}:
        assert getattr(settings, name) == getattr(defaults, name), name


def test_the_schema_lists_the_same_choices_as_the_exporter() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())["properties"]
    for path, field in (("log.level", "log_level"), ("log.format", "log_format"),
                        ("demo.profile", "demo_profile")):  # fmt: skip
        group, key = path.split(".")
        assert tuple(schema[group]["properties"][key]["enum"]) == choices_of(FIELDS[field])


@pytest.mark.parametrize("duration", ["1.5s", "1m30s", "500ms", "2h", "90", "1d", "0.5"])
def test_the_schema_takes_every_duration_the_exporter_takes(chart, duration: str) -> None:
    assert parse_duration(duration) > 0
    chart.validate_schema({"poll": {"interval": duration}, "sessions": {"idleThreshold": duration}})


@pytest.mark.parametrize("duration", ["1s1h", "5 m", "soon", "-5s", "1x"])
def test_the_schema_refuses_durations_the_exporter_refuses(chart, duration: str) -> None:
    with pytest.raises(helm.HelmValuesError, match="at '/poll/interval'"):
        chart.validate_schema({"poll": {"interval": duration}})


def deployment_values_table() -> list[tuple[list[str], list[str], str]]:
    """Rows of docs/deployment.md's values table: value paths, flags, default."""
    section = DEPLOYMENT.split("### Values", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        value, flag, default = (cell.strip() for cell in line.strip().strip("|").split("|"))
        paths = re.findall(r"`([a-zA-Z.]+)`", value)
        flags = re.findall(r"`(--[a-z.-]+)", flag)
        rows.append((paths, flags, default))
    return rows


def test_every_value_in_the_deployment_guide_exists_in_the_chart() -> None:
    rows = deployment_values_table()
    assert len(rows) > 10
    for paths, _, _ in rows:
        for path in paths:
            value_at(path)


def test_every_flag_in_the_deployment_guide_exists() -> None:
    known = set(FLAG_TO_FIELD) | {"--demo", "--no-collector.usage"}
    for _, flags, _ in deployment_values_table():
        for flag in flags:
            assert flag in known, flag


def test_the_deployment_guides_defaults_are_the_charts() -> None:
    for paths, flags, default in deployment_values_table():
        if len(paths) != 1 or not default.startswith("`"):
            continue
        actual, claimed = value_at(paths[0]), default.strip("`")
        field = FLAG_TO_FIELD.get(flags[0]) if flags else None
        if field is not None and is_duration(FIELDS[field]):
            assert parse_duration(str(actual)) == parse_duration(claimed), paths[0]
        else:
            assert str(actual).lower() == claimed.lower(), paths[0]


def test_every_exporter_flag_and_variable_the_guide_names_exists() -> None:
    flags = set(re.findall(r"--(?:no-)?[a-z]+\.[a-z0-9.-]*[a-z0-9]", DEPLOYMENT))
    known = set(FLAG_TO_FIELD) | {f"--no-{f.removeprefix('--')}" for f in FLAG_TO_FIELD if f}
    assert flags <= known, flags - known
    variables = set(re.findall(r"\bNOTTE_[A-Z_]*[A-Z]\b", DEPLOYMENT))
    assert variables <= {env_of(name, field) for name, field in FIELDS.items()}


def test_the_guides_naming_rule_for_variables_holds_or_names_the_exception() -> None:
    for name, field in FIELDS.items():
        flag = flag_of(name, field)
        if flag is None:
            continue
        rule = "NOTTE_EXPORTER_" + re.sub(r"[.-]", "_", flag.removeprefix("--")).upper()
        if env_of(name, field) != rule:
            assert f"`{env_of(name, field)}`" in DEPLOYMENT, name


def test_the_guide_says_a_rotated_key_needs_no_restart() -> None:
    assert "rollout restart" not in DEPLOYMENT
    assert "re-reads the key file" in DEPLOYMENT
