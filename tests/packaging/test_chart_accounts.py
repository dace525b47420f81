"""The chart's `accounts`: one exporter, several accounts and named keys (--config.file).

The accounts file is a ConfigMap naming key files; each key is a Secret key mounted as a
file of one projected volume; no key value is ever in the values, an object or an argument.
The decisive test lays the rendered pod out on disk as the kubelet would (the ConfigMap's
files under its mount, a made-up key under each projected path) and loads the file with
the exporter's own loader: it passes only if every path of the file is one the pod has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from packaging_helpers import JOB_NAME, REPO, Rendered, scenario_values

from notte_exporter.accounts import load_accounts
from notte_exporter.reaper.policy import load as load_policy
from notte_exporter.redaction import Secrets

ACCOUNTS = scenario_values("accounts")
ONE_ACCOUNT = {"accounts": [{"name": "prod", "keySecret": {"name": "notte-prod", "key": "k"}}]}


def accounts_config_map(rendered: Rendered) -> dict[str, Any]:
    (config_map,) = [
        c for c in rendered.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-accounts")
    ]
    return config_map


def made_up_key(secret: str, key: str) -> str:
    """A key, distinct for each Secret key, such as the kubelet would write."""
    return f"sk-{secret}.{key}-7f3c9b2e"


def lay_out_pod(rendered: Rendered, root: Path) -> None:
    """Write the files the pod's accounts mounts would show, under ``root``."""
    mounts = {m["name"]: m["mountPath"] for m in rendered.container()["volumeMounts"]}
    volumes = {v["name"]: v for v in rendered.pod_spec()["volumes"]}
    config_dir = root / mounts["accounts-config"].lstrip("/")
    config_dir.mkdir(parents=True)
    assert (
        volumes["accounts-config"]["configMap"]["name"]
        == (accounts_config_map(rendered)["metadata"]["name"])
    )
    for name, text in accounts_config_map(rendered)["data"].items():
        # The file names its paths as the pod sees them.
        (config_dir / name).write_text(text.replace("/etc/", f"{root}/etc/"))
    keys_dir = root / mounts["account-keys"].lstrip("/")
    for source in volumes["account-keys"]["projected"]["sources"]:
        secret = source["secret"]
        for item in secret["items"]:
            path = keys_dir / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(made_up_key(secret["name"], item["key"]) + "\n")


def test_the_rendered_file_loads_with_each_key_from_its_own_secret(render, tmp_path: Path) -> None:
    rendered = render(ACCOUNTS)
    lay_out_pod(rendered, tmp_path)
    config_file = rendered.flag("config.file")
    assert config_file is not None
    path = tmp_path / config_file.lstrip("/")
    prod, staging = load_accounts(path, default_api_url="https://unused", secrets=Secrets())
    assert (prod.name, prod.api_url, prod.sessions_limit) == (
        "prod",
        "https://api.notte.example",
        100,
    )
    assert (staging.api_url, staging.sessions_limit) == ("https://staging.notte.example", 25)
    assert prod.key() == made_up_key("notte-prod", "api-key")
    assert {named.name: named.key() for named in prod.keys} == {
        "checkout-agent": made_up_key("notte-prod-agents", "checkout"),
        "crawler": made_up_key("notte-prod-agents", "crawler"),
    }
    assert staging.key() == made_up_key("notte-staging", "token")
    assert staging.keys == ()
    assert prod.reaper_config_file is not None
    policy, _ = load_policy(prod.reaper_config_file)
    assert (policy.dry_run, [p.name for p in policy.policies]) == (True, ["idle-10m"])
    assert staging.reaper_config_file is None


def test_accounts_replace_the_single_accounts_flags(render) -> None:
    rendered = render(ACCOUNTS)
    assert rendered.flag("config.file") == "/etc/notte-exporter/accounts/accounts.yaml"
    for flag in ("notte.api-url", "notte.api-key-file", "sessions.limit"):
        assert rendered.flag(flag) is None, flag


def test_no_key_is_inlined_and_every_mount_is_read_only(render) -> None:
    rendered = render(ACCOUNTS)
    assert rendered.of_kind("Secret") == []
    container = rendered.container()
    assert "env" not in container
    assert all(mount["readOnly"] is True for mount in container["volumeMounts"])
    assert all("subPath" not in mount for mount in container["volumeMounts"])
    config = accounts_config_map(rendered)["data"]["accounts.yaml"]
    assert "sk-" not in json.dumps(rendered.objects)
    key_files = [line.split(": ", 1)[1] for line in config.splitlines() if "key_file:" in line]
    assert len(key_files) == 4
    assert all(path.startswith("/etc/notte-exporter/account-keys/") for path in key_files)


@pytest.mark.parametrize(
    "account",
    [
        pytest.param({"apiKey": "sk-Qz7Wx9Kp2Vn4"}, id="api-key"),
        pytest.param({"keySecret": {"name": "s", "key": "k", "value": "sk-Qz7Wx9"}}, id="value"),
        pytest.param({"keys": [{"name": "a", "key": "sk-Qz7Wx9Kp2Vn4"}]}, id="named-key-literal"),
    ],
)
def test_the_schema_has_no_place_for_a_key_value(chart, account: dict[str, Any]) -> None:
    base = {"name": "prod", "keySecret": {"name": "notte-prod", "key": "k"}}
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema({"accounts": [{**base, **account}]})


@pytest.mark.parametrize(
    ("account", "where"),
    [
        pytest.param({"name": "Prod"}, "/accounts/0/name", id="uppercase"),
        pytest.param({"name": "p" * 64}, "/accounts/0/name", id="too-long"),
        pytest.param({"keySecret": None}, "/accounts/0/keySecret", id="no-secret"),
        pytest.param({"keySecret": {"name": "notte-prod"}}, "/accounts/0/keySecret", id="no-key"),
        pytest.param({"sessionsLimit": 0}, "/accounts/0/sessionsLimit", id="limit"),
        pytest.param({"apiUrl": "api.notte.cc"}, "/accounts/0/apiUrl", id="url"),
        pytest.param({"sessions_limit": 5}, "/accounts/0", id="typo"),
        pytest.param(
            {"keys": [{"name": "other", "keySecret": {"name": "s", "key": "k"}}]},
            "/accounts/0/keys/0/name",
            id="other",
        ),
        pytest.param(
            {"reaperPolicy": {"policies": [{"name": "p"}]}},
            "/accounts/0/reaperPolicy/policies/0",
            id="policy",
        ),
    ],
)
def test_the_schema_refuses_what_the_exporter_refuses(
    chart, account: dict[str, Any], where: str
) -> None:
    base = {"name": "prod", "keySecret": {"name": "notte-prod", "key": "k"}}
    with pytest.raises(helm.HelmValuesError, match=f"at '{where}'"):
        chart.validate_schema({"accounts": [{**base, **account}]})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(
            {"notte": {"apiKey": "sk-Qz7Wx9Kp2Vn4"}},
            r"accounts and notte\.apiKey or notte\.existingSecret\.name are both set",
            id="api-key",
        ),
        pytest.param(
            {"notte": {"existingSecret": {"name": "notte-key"}}},
            r"accounts and notte\.apiKey or notte\.existingSecret\.name are both set",
            id="existing-secret",
        ),
        pytest.param({"demo": {"enabled": True}}, "accounts and demo.enabled", id="demo"),
        pytest.param({"account": "prod"}, "accounts and account are both set", id="account"),
        pytest.param(
            {
                "reaper": {
                    "enabled": True,
                    "config": {"policies": [{"name": "p", "older_than": 60}]},
                }
            },
            r"accounts\[\]\.reaperPolicy",
            id="reaper",
        ),
        pytest.param(
            {"notte": {"onlyCurrentToken": True}},
            "accounts and notte.onlyCurrentToken are both set",
            id="only-current-token",
        ),
    ],
)
def test_accounts_refuse_the_single_accounts_values(
    render, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render({**ONE_ACCOUNT, **values})


def test_a_name_used_twice_is_refused_before_it_collides_in_the_volume(render) -> None:
    twice = {"accounts": ONE_ACCOUNT["accounts"] * 2}
    with pytest.raises(helm.HelmError, match='the name "prod" is used twice'):
        render(twice)
    named = {"name": "crawler", "keySecret": {"name": "s", "key": "k"}}
    keys_twice = {"accounts": [{**ONE_ACCOUNT["accounts"][0], "keys": [named, named]}]}
    with pytest.raises(helm.HelmError, match='key name "crawler" is used twice in account "prod"'):
        render(keys_twice)


def test_the_service_monitor_adds_no_account_label_with_accounts(render) -> None:
    (endpoint,) = render(ACCOUNTS).one("ServiceMonitor")["spec"]["endpoints"]
    # The exporter's own account label must reach Prometheus as it is, not as exported_account.
    assert endpoint["relabelings"] == [
        {"action": "replace", "targetLabel": "job", "replacement": JOB_NAME}
    ]


def test_a_changed_accounts_file_rolls_the_pod(render) -> None:
    def checksum(values: dict[str, Any]) -> str:
        template = render(values).one("Deployment")["spec"]["template"]
        return str(template["metadata"]["annotations"]["checksum/accounts"])

    renamed = {"accounts": [{**ONE_ACCOUNT["accounts"][0], "name": "production"}]}
    assert checksum(ONE_ACCOUNT) != checksum(renamed)


def test_without_accounts_nothing_of_them_is_rendered(render) -> None:
    rendered = render({"notte": {"existingSecret": {"name": "notte-key"}}})
    assert rendered.flag("config.file") is None
    assert rendered.flag("notte.api-key-file") is not None
    assert [c for c in rendered.of_kind("ConfigMap") if "accounts" in c["metadata"]["name"]] == []
    annotations = rendered.one("Deployment")["spec"]["template"]["metadata"].get("annotations", {})
    assert "checksum/accounts" not in annotations


def test_the_notes_name_the_accounts_and_warn_of_no_missing_key(render) -> None:
    notes = render(ACCOUNTS).notes
    assert "2 account(s)" in notes
    assert " prod staging." in notes
    assert "no Notte API key" not in notes


def test_the_deployment_guides_example_renders_a_file_the_exporter_loads(
    render, tmp_path: Path
) -> None:
    guide = (REPO / "docs" / "deployment.md").read_text()
    example = guide.split("# values-accounts.yaml\n", 1)[1].split("```", 1)[0]
    rendered = render(yaml.safe_load(example))
    lay_out_pod(rendered, tmp_path)
    config_file = rendered.flag("config.file")
    assert config_file is not None
    accounts = load_accounts(
        tmp_path / config_file.lstrip("/"), default_api_url="https://unused", secrets=Secrets()
    )
    assert [(a.name, len(a.keys)) for a in accounts] == [("prod", 2), ("staging", 0)]
