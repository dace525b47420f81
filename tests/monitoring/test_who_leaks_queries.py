"""The "Who leaks" queries of the sessions dashboard, run by Prometheus' own PromQL engine.

promtool's unit tests evaluate each panel's query (template variables substituted as Grafana
would) over fixed series and compare every sample, so the values are exact and the test
needs no server and no waiting. Config mode (issue 22): two accounts, three keys on prod,
crawler leaking; single mode: the same queries over series without account and key.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from monitoring_helpers import DASHBOARD_DIR, JOB, PROMTOOL, panels, substitute

pytestmark = pytest.mark.prometheus

INSTANCE = "exporter:10717"
MINUTES = 60
VARIABLES = {"job": JOB, "instance": INSTANCE, "__range": "1h"}
LEAK = "Leak share by key (1h)"
WASTE = "Idle waste share by key (6h)"
LIVE = "Live sessions by key"
TOP = "Top 10 keys by idle waste (selected range)"
DOLLARS = "Browser dollars by key (estimate)"

# Per minute: sessions ended by close reason, browser seconds, idle seconds of sessions
# closed by idle timeout; live sessions; and each account's browser cost this period.
KEYS: dict[tuple[str, str], dict[str, float]] = {
    ("prod", "checkout-agent"): {"manual": 10, "browser": 600, "live": 3},
    ("prod", "crawler"): {"manual": 1, "idle_timeout": 2, "browser": 300, "waste": 120, "live": 7},
    ("prod", "other"): {"manual": 5, "browser": 100, "live": 1},
    ("staging", "other"): {"manual": 10, "idle_timeout": 1, "browser": 200, "waste": 6, "live": 2},
}
BROWSER_COST = {"prod": 100.0, "staging": 50.0}


def _who_leaks_queries() -> dict[str, str]:
    dashboard = json.loads((DASHBOARD_DIR / "notte-sessions.json").read_text(encoding="utf-8"))
    return {
        panel["title"]: panel["targets"][0]["expr"]
        for panel in panels(dashboard)
        if panel["title"] in {LEAK, WASTE, LIVE, TOP, DOLLARS}
    }


def _line(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    text = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def _series(keyed: bool) -> list[dict[str, str]]:
    """promtool's input series, as the exporter serves them: in config mode every key of
    both accounts; in single mode staging's numbers alone, without account or key."""
    result = []
    for (account, key), per_minute in KEYS.items():
        if not keyed and account != "staging":
            continue
        base = {"job": JOB, "instance": INSTANCE}
        if keyed:
            base |= {"account": account, "key": key}
        chromium = {**base, "browser_type": "chromium"}
        for reason in ("manual", "idle_timeout"):
            if reason in per_minute:
                ended = {**chromium, "status": "closed", "close_reason": reason}
                values = f"0+{per_minute[reason]}x{MINUTES}"
                result.append(_line("notte_sessions_closed_total", ended, values))
        browser = f"0+{per_minute['browser']}x{MINUTES}"
        result.append(_line("notte_sessions_browser_seconds_total", chromium, browser))
        if "waste" in per_minute:
            waste = {**chromium, "close_reason": "idle_timeout"}
            values = f"0+{per_minute['waste']}x{MINUTES}"
            result.append(_line("notte_sessions_idle_seconds_total", waste, values))
        live = f"{per_minute['live']}x{MINUTES}"
        result.append(_line("notte_sessions_active", chromium, live))
    for account, dollars in BROWSER_COST.items():
        if keyed or account == "staging":
            usage = {"job": JOB, "instance": INSTANCE, "category": "browser"}
            if keyed:
                usage["account"] = account
            result.append(_line("notte_usage_cost_dollars", usage, f"{dollars}x{MINUTES}"))
    return result


def _expected(accounts: set[str], keyed: bool) -> dict[str, list[tuple[dict[str, str], float]]]:
    """What each panel must show: computed here in the order PromQL computes it."""
    rows = {ak: v for ak, v in KEYS.items() if ak[0] in accounts and (keyed or ak[0] == "staging")}

    def labels(account: str, key: str) -> dict[str, str]:
        return {"account": account, "key": key} if keyed else {"key": "all keys"}

    def total(v: dict[str, float], name: str) -> float:
        return v.get(name, 0) * MINUTES

    browser_by_account: dict[str, float] = {}
    for (account, _), v in rows.items():
        browser_by_account[account] = browser_by_account.get(account, 0) + total(v, "browser")
    known = {ak: total(v, "manual") + total(v, "idle_timeout") for ak, v in rows.items()}
    return {
        LEAK: [(labels(*ak), total(v, "idle_timeout") / known[ak]) for ak, v in rows.items()],
        WASTE: [(labels(*ak), total(v, "waste") / total(v, "browser")) for ak, v in rows.items()],
        LIVE: [(labels(*ak), v["live"]) for ak, v in rows.items()],
        TOP: [(labels(*ak), total(v, "waste")) for ak, v in rows.items() if "waste" in v],
        DOLLARS: [
            (
                labels(*ak),
                total(v, "browser") / browser_by_account[ak[0]] * BROWSER_COST[ak[0]],
            )
            for ak, v in rows.items()
        ],
    }


def _promtool_case(
    series: list[dict[str, str]], account: str, expected: dict[str, list[tuple[dict, float]]]
) -> dict[str, Any]:
    queries = _who_leaks_queries()
    assert set(queries) == set(expected)
    return {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": substitute(queries[title], {**VARIABLES, "account": account}),
                "eval_time": f"{MINUTES}m",
                "exp_samples": [
                    {
                        "labels": "{" + ", ".join(f'{k}="{v}"' for k, v in lab.items()) + "}",
                        "value": value,
                    }
                    for lab, value in samples
                ],
            }
            for title, samples in expected.items()
        ],
    }


def _run(tmp_path: Path, cases: list[dict[str, Any]]) -> None:
    path = tmp_path / "who-leaks.yaml"
    document = {"rule_files": [], "evaluation_interval": "1m", "tests": cases}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_expected_samples_put_the_leaking_key_first_with_its_undiluted_leak_share():
    # What the promtool cases below require the queries to return.
    expected = _expected({"prod", "staging"}, keyed=True)
    top = max(expected[TOP], key=lambda sample: sample[1])
    assert top[0] == {"account": "prod", "key": "crawler"}
    leak = {tuple(lab.values()): value for lab, value in expected[LEAK]}
    assert leak["prod", "crawler"] == pytest.approx(2 / 3)


def test_who_leaks_queries_split_every_account_by_key_in_config_mode(tmp_path):
    series = _series(keyed=True)
    _run(
        tmp_path,
        [
            _promtool_case(series, ".*", _expected({"prod", "staging"}, keyed=True)),
            _promtool_case(series, "staging", _expected({"staging"}, keyed=True)),
        ],
    )


def test_who_leaks_queries_show_each_single_mode_account_as_all_keys(tmp_path):
    # Single mode: no account, no key label; "All" accounts is ".*", which matches them.
    _run(
        tmp_path, [_promtool_case(_series(keyed=False), ".*", _expected({"staging"}, keyed=False))]
    )
