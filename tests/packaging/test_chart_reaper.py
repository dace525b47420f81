"""The chart's reaper: off by default, a mounted policy file in dry run unless it says not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from packaging_helpers import REPO

from notte_exporter.reaper.policy import Policy, ReaperPolicy, parse

POLICIES = {"policies": [{"name": "idle-10m", "idle_longer_than": "10m"}]}
SCHEMA = json.loads((REPO / "helm/notte-exporter/values.schema.json").read_text())


def enabled(**config: Any) -> dict[str, Any]:
    return {"reaper": {"enabled": True, "config": {**POLICIES, **config}}}


def policy_file(rendered) -> dict[str, Any]:
    (config_map,) = [
        c for c in rendered.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-reaper")
    ]
    document: dict[str, Any] = yaml.safe_load(config_map["data"]["reaper.yaml"])
    return document


def test_the_reaper_is_off_by_default(render) -> None:
    rendered = render({})
    assert rendered.flag("reaper.config.file") is None
    assert rendered.of_kind("ConfigMap") == []


def test_an_enabled_reaper_reads_its_mounted_policy_file_in_dry_run(render) -> None:
    rendered = render(enabled())
    assert rendered.flag("reaper.config.file") == "/etc/notte-exporter/reaper/reaper.yaml"
    assert policy_file(rendered) == {"dry_run": True, **POLICIES}
    mounts = {m["name"]: m for m in rendered.container()["volumeMounts"]}
    assert mounts["reaper-config"]["mountPath"] == "/etc/notte-exporter/reaper"
    assert mounts["reaper-config"]["readOnly"] is True
    (volume,) = [v for v in rendered.pod_spec()["volumes"] if v["name"] == "reaper-config"]
    assert "subPath" not in mounts["reaper-config"]  # edits reach the pod without a restart
    assert volume["configMap"]["name"].endswith("-reaper")


def test_dry_run_false_is_rendered_only_when_set(render) -> None:
    assert policy_file(render(enabled(dry_run=False)))["dry_run"] is False


def test_the_notes_say_whether_the_reaper_stops_anything(render) -> None:
    assert "The reaper runs in DRY RUN" in render(enabled()).notes
    assert "The reaper is LIVE" in render(enabled(dry_run=False)).notes
    assert "reaper" not in render({}).notes.lower()


def test_the_rendered_file_is_one_the_exporter_accepts(render) -> None:
    values = enabled(max_stops_per_poll=2, exclude_sessions=["s-1"])
    values["reaper"]["config"]["policies"].append(
        {"name": "old-chrome", "older_than": "2h", "browser_types": ["chrome"]}
    )
    text = yaml.safe_dump(policy_file(render(values)))
    policy = parse(text.encode(), Path("reaper.yaml"))
    assert (policy.dry_run, policy.max_stops_per_poll, len(policy.policies)) == (True, 2, 2)


def test_an_enabled_reaper_without_policies_is_refused_with_what_to_do(render) -> None:
    with pytest.raises(helm.HelmError, match=r"reaper\.enabled needs reaper\.config\.policies"):
        render({"reaper": {"enabled": True}})


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"dryrun": False}, id="unknown-key"),
        pytest.param({"max_stops_per_poll": 0}, id="zero-limit"),
        pytest.param({"policies": [{"name": "Idle", "idle_longer_than": "10m"}]}, id="bad-name"),
        pytest.param({"policies": [{"name": "p"}]}, id="no-condition"),
        pytest.param({"policies": [{"name": "p", "older_than": "soon"}]}, id="bad-duration"),
    ],
)
def test_the_schema_refuses_what_the_exporter_refuses(chart, config: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema({"reaper": {"enabled": True, "config": {**POLICIES, **config}}})


def test_the_schema_knows_every_key_of_the_policy_file_and_no_other() -> None:
    config = SCHEMA["properties"]["reaper"]["properties"]["config"]
    assert set(config["properties"]) == set(ReaperPolicy.model_fields)
    policy = config["properties"]["policies"]["items"]
    assert set(policy["properties"]) == set(Policy.model_fields)
