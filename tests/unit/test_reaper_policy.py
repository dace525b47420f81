"""The reaper's policy file: what it accepts, every problem said at once, and reloads."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from notte_exporter.reaper.policy import LivePolicy, load, parse
from notte_exporter.settings import ReaperConfigError

GOOD = """\
policies:
  - name: idle-10m
    idle_longer_than: 10m
"""
PATH = Path("reaper.yaml")


def problems_of(text: str | bytes) -> list[str]:
    content = text.encode() if isinstance(text, str) else text
    with pytest.raises(ReaperConfigError) as raised:
        parse(content, PATH)
    return raised.value.problems


def test_the_issues_example_loads_with_its_meaning() -> None:
    policy = parse(
        b"""\
dry_run: true
max_stops_per_poll: 5
max_stops_per_hour: 60
exclude_sessions: []
policies:
  - name: idle-10m
    idle_longer_than: 10m
  - name: older-than-2h
    older_than: 2h
    browser_types: [chrome, chromium]
""",
        PATH,
    )
    idle, old = policy.policies
    assert (idle.name, idle.idle_longer_than, idle.older_than, idle.browser_types) == (
        "idle-10m",
        600.0,
        None,
        None,
    )
    assert (old.older_than, old.browser_types) == (7200.0, ("chrome", "chromium"))
    assert old.conditions() == "older than 2h"


def test_a_file_that_says_nothing_else_is_a_dry_run_with_the_default_limits() -> None:
    policy = parse(GOOD.encode(), PATH)
    assert (policy.dry_run, policy.max_stops_per_poll, policy.max_stops_per_hour) == (True, 5, 60)
    assert policy.exclude_sessions == ()


def test_only_a_yaml_false_ends_the_dry_run() -> None:
    assert parse(b"dry_run: false\n" + GOOD.encode(), PATH).dry_run is False


def test_plain_seconds_are_a_duration_too() -> None:
    policy = parse(b"policies: [{name: p, idle_longer_than: 90, older_than: '1.5'}]", PATH)
    assert (policy.policies[0].idle_longer_than, policy.policies[0].older_than) == (90.0, 1.5)


MALFORMED = [
    pytest.param(
        "dry-run: false\n" + GOOD,
        "dry-run: unknown key (known keys: dry_run",
        id="unknown-key",
    ),
    pytest.param(
        "policies: [{name: p, idle_longer: 10m}]",
        "policies[0].idle_longer: unknown key",
        id="unknown-policy-key",
    ),
    pytest.param(
        "policies: [{name: p, idle_longer_than: 10 minutes}]",
        "policies[0].idle_longer_than: invalid duration '10 minutes'",
        id="bad-duration",
    ),
    pytest.param(
        "policies: [{name: p, older_than: 1s1h}]",
        "policies[0].older_than: invalid duration '1s1h': write each unit once",
        id="units-out-of-order",
    ),
    pytest.param(
        "policies: [{name: p, older_than: 0s}]",
        "policies[0].older_than: must be more than 0s, got 0s",
        id="zero-duration",
    ),
    pytest.param(
        "policies: [{name: p, idle_longer_than: -5m}]",
        "policies[0].idle_longer_than: must be more than 0s, got -5m",
        id="negative-duration",
    ),
    pytest.param(
        "policies: [{name: p, idle_longer_than: [10m]}]",
        "policies[0].idle_longer_than: must be a duration such as 10m",
        id="duration-not-scalar",
    ),
    pytest.param(
        "policies: [{name: p, older_than: .inf}]",
        "policies[0].older_than: must be a duration such as 10m",
        id="infinite-duration",
    ),
    pytest.param(
        "policies: [{name: p, older_than: .nan}]",
        "policies[0].older_than: must be a duration such as 10m",
        id="nan-duration",
    ),
    pytest.param(
        "max_stops_per_poll: 0\n" + GOOD,
        "max_stops_per_poll: must be at least 1, got 0",
        id="zero-per-poll",
    ),
    pytest.param(
        "max_stops_per_hour: -1\n" + GOOD,
        "max_stops_per_hour: must be at least 1, got -1",
        id="negative-per-hour",
    ),
    pytest.param(
        "max_stops_per_poll: five\n" + GOOD,
        "max_stops_per_poll: must be a whole number",
        id="limit-not-a-number",
    ),
    pytest.param(
        "max_stops_per_hour: 2.5\n" + GOOD,
        "max_stops_per_hour: must be a whole number",
        id="limit-not-whole",
    ),
    pytest.param(
        GOOD + "  - name: idle-10m\n    older_than: 1h\n",
        "policies[1].name: 'idle-10m' is already the name of policies[0]; names must be unique",
        id="duplicate-names",
    ),
    pytest.param(
        "policies: []",
        "policies: give at least one policy",
        id="no-policies",
    ),
    pytest.param(
        "dry_run: true\n",
        "policies: give at least one policy",
        id="policies-left-out",
    ),
    pytest.param(
        "policies:\n",
        "policies: give at least one policy",
        id="policies-empty",
    ),
    pytest.param(
        "",
        "policies: give at least one policy",
        id="empty-file",
    ),
    pytest.param(
        "policies: [{name: Idle-10m, idle_longer_than: 10m}]",
        "policies[0].name: 'Idle-10m' is not a policy name: use lower-case letters, digits and "
        "dashes ([a-z0-9-]+)",
        id="upper-case-name",
    ),
    pytest.param(
        "policies: [{name: idle_10m, idle_longer_than: 10m}]",
        "policies[0].name: 'idle_10m' is not a policy name",
        id="underscore-name",
    ),
    pytest.param(
        "policies: [{name: 'idle 10m', idle_longer_than: 10m}]",
        "policies[0].name: 'idle 10m' is not a policy name",
        id="space-name",
    ),
    pytest.param(
        "policies: [{name: '', idle_longer_than: 10m}]",
        "policies[0].name: '' is not a policy name",
        id="empty-name",
    ),
    pytest.param(
        "policies: [{idle_longer_than: 10m}]",
        "policies[0].name: missing",
        id="no-name",
    ),
    pytest.param(
        "policies: [{name: 7, idle_longer_than: 10m}]",
        "policies[0].name: must be text",
        id="number-name",
    ),
    pytest.param(
        "policies: [{name: p, browser_types: [chrome]}]",
        "policies[0]: give idle_longer_than, older_than or both",
        id="no-condition",
    ),
    pytest.param(
        "policies: [{name: p, older_than: 1h, browser_types: []}]",
        "policies[0].browser_types: name at least one browser type, or leave the key out",
        id="no-browser-types",
    ),
    pytest.param(
        "dry_run: 'false'\n" + GOOD,
        "dry_run: must be true or false",
        id="quoted-false",
    ),
    pytest.param(
        "dry_run: 0\n" + GOOD,
        "dry_run: must be true or false",
        id="zero-for-false",
    ),
    pytest.param(
        "policies: [{name: p, idle_longer_than: 10m]\n",
        "not valid YAML (line 1)",
        id="not-yaml",
    ),
    pytest.param(
        "- name: p\n  idle_longer_than: 10m\n",
        "the file: must be a mapping of keys (dry_run, ",
        id="a-list",
    ),
    pytest.param(
        "policies: idle-10m\n",
        "policies: must be a list",
        id="policies-not-a-list",
    ),
    pytest.param(
        "policies: [idle-10m]\n",
        "policies[0]: must be a mapping of keys (name, ",
        id="policy-not-a-mapping",
    ),
    pytest.param(
        "exclude_sessions: abc\n" + GOOD,
        "exclude_sessions: must be a list",
        id="exclude-not-a-list",
    ),
    pytest.param(
        "exclude_sessions: [12]\n" + GOOD,
        "exclude_sessions[0]: must be text",
        id="exclude-not-text",
    ),
    pytest.param(
        b"\xff\xfe" + GOOD.encode(),
        "not UTF-8 text",
        id="not-utf8",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED)
def test_a_malformed_file_is_refused_with_a_clear_line(text: str | bytes, expected: str) -> None:
    problems = problems_of(text)
    assert any(problem.startswith(expected) for problem in problems), problems
    for problem in problems:
        assert "\n" not in problem
        assert "Traceback" not in problem
        assert "pydantic" not in problem  # no links to pydantic's docs, no class names


def test_every_problem_of_a_file_is_said_at_once() -> None:
    problems = problems_of(
        """\
dry_run: maybe
max_stops_per_poll: 0
surprise: 1
policies:
  - name: Bad_Name
  - name: twice
    idle_longer_than: soon
  - name: twice
    older_than: 1h
"""
    )
    assert len(problems) == 7, problems
    for words in (
        "dry_run: must be true or false",
        "max_stops_per_poll: must be at least 1",
        "surprise: unknown key",
        "policies[0].name: 'Bad_Name' is not a policy name",
        "policies[0]: give idle_longer_than, older_than or both",
        "policies[1].idle_longer_than: invalid duration 'soon'",
        "policies[2].name: 'twice' is already the name of policies[1]",
    ):
        assert any(problem.startswith(words) for problem in problems), (words, problems)


def test_an_unreadable_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ReaperConfigError) as raised:
        load(tmp_path / "missing.yaml")
    assert raised.value.problems == ["cannot read it: No such file or directory"]


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "reaper.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ReaperConfigError) as raised:
        load(fifo)
    assert raised.value.problems == ["is a FIFO, not a regular file"]


def test_a_duration_past_a_year_is_refused_as_every_duration_setting_is() -> None:
    problems = problems_of("policies:\n  - name: p\n    older_than: 3000y\n")
    assert problems == ["policies[0].older_than: must be at most 1y, got 3000y"]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_reload_applies_an_edit_and_says_what_changed(tmp_path: Path) -> None:
    live = LivePolicy(write(tmp_path / "reaper.yaml", GOOD))
    edit = "dry_run: false\nmax_stops_per_poll: 2\n" + GOOD + "  - name: old\n    older_than: 2h\n"
    write(live.path, edit)
    change = live.reload()
    assert change == (
        "reaper config reloaded: dry run is off: matching sessions are stopped from now on; "
        "limits are now 2 stops per poll and 60 per hour; policies added: old"
    )
    assert live.current.dry_run is False


def test_a_reload_of_the_same_content_changes_nothing(tmp_path: Path) -> None:
    live = LivePolicy(write(tmp_path / "reaper.yaml", GOOD))
    assert live.reload() is None


def test_a_broken_edit_keeps_the_last_good_policy_and_logs_why_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = LivePolicy(write(tmp_path / "reaper.yaml", GOOD))
    write(live.path, "dry_run: false\npolicies: []\n")
    with caplog.at_level(logging.ERROR):
        assert live.reload() is None
        assert live.reload() is None
    assert live.current.dry_run is True
    assert [record.getMessage() for record in caplog.records] == [
        f"reaper config {live.path}: keeping the last good policies: policies: give at least "
        "one policy (a name, and idle_longer_than, older_than or both)"
    ]


def test_a_deleted_file_keeps_the_last_good_policy(tmp_path: Path) -> None:
    live = LivePolicy(write(tmp_path / "reaper.yaml", GOOD))
    live.path.unlink()
    assert live.reload() is None
    assert live.current.policies[0].name == "idle-10m"


def test_the_watch_applies_an_edit_without_a_signal(tmp_path: Path) -> None:
    live = LivePolicy(write(tmp_path / "reaper.yaml", GOOD))
    write(live.path, "dry_run: false\n" + GOOD)
    stop = threading.Event()
    looked = threading.Event()
    original = live.reload

    def reload_then_stop() -> str | None:
        change = original()
        stop.set()
        looked.set()
        return change

    live.reload = reload_then_stop  # type: ignore[method-assign]
    live.watch(stop, period=0)
    assert looked.is_set()
    assert live.current.dry_run is False


EXAMPLES = Path(__file__).parents[2] / "examples"


def test_the_shipped_example_is_a_dry_run_and_the_demos_is_live() -> None:
    example, _ = load(EXAMPLES / "reaper.yaml")
    demo, _ = load(EXAMPLES / "reaper-demo.yaml")
    assert [p.name for p in example.policies] == ["idle-10m", "older-than-2h"]
    assert example.dry_run is True
    assert demo.dry_run is False  # the simulated account only: see its comments
