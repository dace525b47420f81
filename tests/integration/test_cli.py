"""The command line as an operator meets it: a real process, its output and exit codes."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from notte_exporter.simulator import Fault
from support import API_KEY

# Each test starts the exporter as a process of its own: the full tier (make test).
pytestmark = pytest.mark.slow

COMMAND = [sys.executable, "-m", "notte_exporter"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOTTE_")}
    return subprocess.run(
        [*COMMAND, *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_once_prints_the_exposition_and_exits_0(api, account) -> None:
    account.start_session(browser_type="firefox")
    result = run("--once", env={"NOTTE_API_URL": api.url, "NOTTE_API_KEY": API_KEY})
    assert result.returncode == 0, result.stderr
    assert "notte_up 1.0" in result.stdout
    assert 'notte_sessions_active{browser_type="firefox"} 1.0' in result.stdout


def test_once_reads_the_key_from_a_file(api, tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY + "\n")
    result = run("--once", "--notte.api-key-file", str(key_file), env={"NOTTE_API_URL": api.url})
    assert result.returncode == 0, result.stderr


def test_once_exits_1_with_the_reason_on_stderr(api) -> None:
    result = run("--once", env={"NOTTE_API_URL": api.url, "NOTTE_API_KEY": "sk-wrong"})
    assert result.returncode == 1
    assert "poll failed: unauthorized: GET /sessions answered 401" in result.stderr
    assert result.stdout == ""
    assert "sk-wrong" not in result.stderr


def test_once_with_a_config_file_labels_the_account(api, account, tmp_path: Path) -> None:
    account.start_session(browser_type="firefox")
    (tmp_path / "key").write_text(API_KEY + "\n")
    config = tmp_path / "accounts.yaml"
    config.write_text(f"accounts:\n  - name: prod\n    api_url: {api.url}\n    key_file: key\n")
    result = run("--once", "--config.file", str(config))
    assert result.returncode == 0, result.stderr
    assert 'notte_up{account="prod"} 1.0' in result.stdout
    assert (
        'notte_sessions_active{account="prod",browser_type="firefox",key="other"} 1.0'
        in result.stdout
    )
    assert API_KEY not in result.stdout + result.stderr


def test_a_broken_config_file_lists_its_problems_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("sk-secret-value two-words\n")
    config = tmp_path / "accounts.yaml"
    config.write_text("accounts:\n  - name: Prod\n    key_file: key\n    colour: blue\n")
    result = run("--once", "--config.file", str(config))
    assert result.returncode == 2
    assert f"invalid config file {str(config)!r}" in result.stderr
    assert "Prod" in result.stderr
    assert "colour" in result.stderr
    assert "sk-secret-value" not in result.stderr


def test_once_on_demo_data_needs_no_key() -> None:
    result = run("--demo", "--once")
    assert result.returncode == 0, result.stderr
    assert 'notte_up{account="demo-a"} 1.0' in result.stdout


def test_the_demo_watches_two_accounts_and_once_says_how_each_went() -> None:
    result = run("--demo", "--once")
    assert result.returncode == 0, result.stderr
    assert 'notte_up{account="demo-b"} 1.0' in result.stdout
    for name in ("demo-a", "demo-b"):
        assert re.search(rf"notte-exporter: account {name}: \d+ live sessions", result.stderr)


def test_the_demo_shows_the_cost_metrics() -> None:
    result = run("--demo", "--demo.profile", "leak", "--once")
    assert result.returncode == 0, result.stderr
    for name in (
        'notte_usage_up{account="demo-a"} 1.0',
        'notte_usage_total_cost_dollars{account="demo-a"} ',
        'notte_usage_cost_dollars{account="demo-a",category="browser"} ',
        'notte_sessions_browser_seconds_total{account="demo-a",browser_type="chromium",'
        'key="crawler"} ',
        'notte_sessions_idle_seconds_total{account="demo-a",browser_type="chromium",'
        'close_reason="idle_timeout",key="crawler"}',
    ):
        assert name in result.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--no-collector.usage",), {}), ((), {"NOTTE_EXPORTER_COLLECTOR_USAGE": "false"})],
    ids=["flag", "environment"],
)
def test_no_collector_usage_turns_the_usage_requests_off(api, args, env) -> None:
    result = run("--once", *args, env={"NOTTE_API_URL": api.url, "NOTTE_API_KEY": API_KEY, **env})
    assert result.returncode == 0, result.stderr
    assert "notte_usage_" not in result.stdout
    assert [r for r in api.requests if r.path == "/usage"] == []


def test_collector_usage_flag_wins_over_the_environment(api) -> None:
    result = run(
        "--once", "--collector.usage",
        env={"NOTTE_API_URL": api.url, "NOTTE_API_KEY": API_KEY,
             "NOTTE_EXPORTER_COLLECTOR_USAGE": "false"},
    )  # fmt: skip
    assert "notte_usage_up 1.0" in result.stdout


def test_json_logs_are_one_object_per_line(api) -> None:
    api.faults.push(Fault.status(403))
    result = run(
        "--once", "--log.format", "json", "--notte.retries", "0",
        env={"NOTTE_API_URL": api.url, "NOTTE_API_KEY": API_KEY},
    )  # fmt: skip
    assert '"level": "warning"' in result.stderr
    assert '"msg": "poll failed: forbidden:' in result.stderr
    logged = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
    [line] = [x for x in logged if x["msg"].startswith("poll failed")]
    assert line["reason"] == "forbidden"
    assert line["status"] == 403
    assert line["requests"] == 1
    assert line["pages"] == 0
    assert isinstance(line["duration_seconds"], float)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_daemon_logs_its_url_and_stops_cleanly_on_signal(signum: int) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOTTE_")}
    process = subprocess.Popen(
        [*COMMAND, "--demo", "--web.listen-address", "127.0.0.1:0"],
        env=clean,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "serving metrics at" in line:
                assert re.search(r"http://127\.0\.0\.1:\d+/metrics", line)
                break
        process.send_signal(signum)
        assert process.wait(timeout=5) == 0
        rest = process.stderr.read()
        assert "shutting down" in rest
        assert "stopped" in rest
    finally:
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_log_level_warn_is_accepted_as_go_exporters_spell_it() -> None:
    result = run("--demo", "--once", "--log.level", "warn")
    assert result.returncode == 0, result.stderr


def test_exporter_metrics_are_served_by_default() -> None:
    result = run("--demo", "--once")
    assert "python_info{" in result.stdout
    assert "process_" in result.stdout or sys.platform != "linux"


def test_disable_exporter_metrics_drops_process_platform_and_gc() -> None:
    result = run("--demo", "--once", "--web.disable-exporter-metrics")
    assert result.returncode == 0, result.stderr
    for prefix in ("process_", "python_info", "python_gc_"):
        assert prefix not in result.stdout
    assert 'notte_up{account="demo-a"} 1.0' in result.stdout


def test_build_info_says_whether_the_data_is_simulated(api) -> None:
    demo = run("--demo", "--once").stdout
    live = run("--once", env={"NOTTE_API_URL": api.url, "NOTTE_API_KEY": API_KEY}).stdout
    assert re.search(r'notte_exporter_build_info\{.*mode="demo".*\} 1\.0', demo)
    assert re.search(r'notte_exporter_build_info\{.*mode="live".*\} 1\.0', live)
