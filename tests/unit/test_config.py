import typing
from pathlib import Path

import pytest
from pydantic import SecretStr

from notte_exporter.options import GROUPS, env_of, flag_of, is_duration, names_of, option_of
from notte_exporter.settings import Settings, SettingsError, load_settings, names
from support import API_KEY, NOT_KEY_FILES, make_not_a_key_file


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTTE_EXPORTER_POLL_INTERVAL", "1m")
    assert load_settings({"demo": True, "poll_interval": "45s"}).poll_interval == 45


def test_the_sdk_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTTE_API_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("NOTTE_API_KEY", "sk-env")
    settings = load_settings({})
    assert settings.notte_api_url == "http://127.0.0.1:1"
    assert isinstance(settings.notte_api_key, SecretStr)


def test_only_the_documented_variable_sets_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTTE_EXPORTER_NOTTE_API_URL", "http://127.0.0.1:1")
    assert load_settings({"demo": True}).notte_api_url == "https://api.notte.cc"


def test_the_poll_budget_defaults_to_80_percent_of_the_interval() -> None:
    assert load_settings({"demo": True, "poll_interval": "10s"}).effective_poll_timeout == 8


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [(":10717", "", 10717), ("127.0.0.1:80", "127.0.0.1", 80), ("[::1]:9", "::1", 9)],
)
def test_listen_addresses_in_go_style(address: str, host: str, port: int) -> None:
    settings = load_settings({"demo": True, "web_listen_address": address})
    assert settings.listen_host_port == (host, port)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"notte_api_url": "api.notte.cc"}, "is not an http(s) URL"),
        ({"web_telemetry_path": "/healthz"}, "must start with / and not be"),
        ({"web_listen_address": ":99999"}, "is not host:port"),
        ({"notte_page_size": "0"}, "--notte.page-size"),
        ({"log_format": "xml"}, "--log.format"),
        ({"sessions_detail_limit": "-1"}, "--sessions.detail-limit"),
        ({"usage_interval": "500ms"}, "--usage.interval"),
        ({"sessions_pending_timeout": "0s"}, "--sessions.pending-timeout"),
    ],
)
def test_invalid_values_name_the_flag_and_the_problem(overrides: dict, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, **overrides})
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"poll_interval": "500ms"},
         "--poll.interval (NOTTE_EXPORTER_POLL_INTERVAL): must be at least 1s, got 500ms"),
        ({"sessions_idle_threshold": "-5s"},
         "--sessions.idle-threshold (NOTTE_EXPORTER_SESSIONS_IDLE_THRESHOLD): "
         "must be at least 0s, got -5s"),
        ({"notte_timeout": "0"},
         "--notte.timeout (NOTTE_EXPORTER_NOTTE_TIMEOUT): must be more than 0s, got 0s"),
        ({"notte_page_size": "500"},
         "--notte.page-size (NOTTE_EXPORTER_NOTTE_PAGE_SIZE): must be at most 100, got 500"),
    ],
)  # fmt: skip
def test_limits_are_stated_in_the_settings_units(overrides: dict, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, **overrides})
    assert caught.value.problems == [problem]


@pytest.mark.parametrize("text", ["1.5s", "1m30s", "2h", "90"])
def test_poll_interval_takes_go_and_prometheus_durations(text: str) -> None:
    assert load_settings({"demo": True, "poll_interval": text, "poll_timeout": "1s"})


def test_a_wrong_choice_lists_the_choices() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, "log_level": "loud"})
    assert caught.value.problems == [
        "--log.level (NOTTE_EXPORTER_LOG_LEVEL): must be one of debug, info, warn, warning, error"
    ]


@pytest.mark.parametrize("level", ["warn", "WARN", "warning", "debug"])
def test_log_levels_in_go_and_python_spelling(level: str) -> None:
    assert load_settings({"demo": True, "log_level": level}).log_level == level.lower()


def test_a_bad_api_url_from_the_environment_is_named_as_documented(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTTE_API_URL", "api.notte.cc")
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True})
    assert caught.value.problems[0].startswith("--notte.api-url (NOTTE_API_URL): ")
    assert "NOTTE_EXPORTER_NOTTE_API_URL" not in str(caught.value)


def test_an_empty_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTTE_API_KEY", "")
    with pytest.raises(SettingsError, match="NOTTE_API_KEY: the key is blank"):
        load_settings({})


def test_an_empty_key_file_is_refused(tmp_path) -> None:
    empty = tmp_path / "key"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match="the key is blank"):
        load_settings({"notte_api_key_file": str(empty)})


def test_flag_and_variable_names_follow_one_rule() -> None:
    fields = Settings.model_fields
    assert flag_of("notte_api_key_file", fields["notte_api_key_file"]) == "--notte.api-key-file"
    assert flag_of("demo", fields["demo"]) == "--demo"
    assert env_of("sessions_lookup_budget", fields["sessions_lookup_budget"]) == (
        "NOTTE_EXPORTER_SESSIONS_LOOKUP_BUDGET"
    )


def test_the_sdk_names_are_declared_on_their_fields() -> None:
    fields = Settings.model_fields
    assert names_of("notte_api_url", fields["notte_api_url"]) == "--notte.api-url (NOTTE_API_URL)"
    assert names_of("notte_api_key", fields["notte_api_key"]) == "NOTTE_API_KEY"


def test_every_setting_declares_one_option_in_a_known_group() -> None:
    for field in Settings.model_fields.values():
        assert option_of(field).group in GROUPS
        assert field.description


def test_repeatable_and_negatable_settings_are_expressible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typing import Annotated

    from pydantic import Field

    from notte_exporter.options import Option

    class Extended(Settings):
        web_extra_address: Annotated[list[str], Option("web", "ADDRESS", repeatable=True)] = Field(
            default_factory=list, description="Repeatable."
        )
        collector_extra: Annotated[bool, Option("web", negatable=True)] = Field(
            True, description="Negatable."
        )

    monkeypatch.setenv("NOTTE_EXPORTER_WEB_EXTRA_ADDRESS", ":1, :2")
    monkeypatch.setenv("NOTTE_EXPORTER_COLLECTOR_EXTRA", "false")
    settings = Extended(demo=True)
    assert settings.web_extra_address == [":1", ":2"]
    assert settings.collector_extra is False
    assert typing.get_origin(Extended.model_fields["web_extra_address"].annotation) is list


def test_a_missing_key_is_reported_along_with_invalid_values() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"poll_interval": "soon", "log_level": "loud"})
    problems = caught.value.problems
    assert len(problems) == 3
    assert any(p.startswith("--poll.interval") for p in problems)
    assert any(p.startswith("--log.level") for p in problems)
    assert any(p.startswith("NOTTE_API_KEY: no API key") for p in problems)


def test_a_timing_conflict_is_reported_along_with_invalid_values() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, "poll_timeout": "1m", "log_format": "xml"})
    assert len(caught.value.problems) == 2
    assert "must be shorter than --poll.interval" in str(caught.value)


def test_a_conflict_involving_an_invalid_value_is_left_out() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, "poll_timeout": "1m", "poll_interval": "soon"})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("--poll.interval")


def test_the_usage_collector_is_on_by_default_every_5m() -> None:
    settings = load_settings({"demo": True})
    assert settings.collector_usage is True
    assert settings.usage_interval == 300
    assert settings.sessions_pending_timeout == 900


@pytest.mark.parametrize("interval", ["1s", "90s", "1h"])
def test_any_usage_interval_of_at_least_a_second_is_accepted(interval: str) -> None:
    assert load_settings({"demo": True, "usage_interval": interval}).usage_interval >= 1


def test_the_usage_collector_can_be_switched_off_by_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTTE_EXPORTER_COLLECTOR_USAGE", "false")
    assert load_settings({"demo": True}).collector_usage is False


def test_the_key_sources_are_named_as_the_model_declares_them(tmp_path) -> None:
    from notte_exporter.keys import ENV_SOURCE, file_source
    from notte_exporter.settings import env_name, flag_name

    assert env_name("notte_api_key") == ENV_SOURCE
    assert file_source(tmp_path).startswith(flag_name("notte_api_key_file") + " ")


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://sk%2DQz7Wx9Kp@api.notte.cc", "Qz7Wx9Kp"),
        ("http://user:Rt6Yb%21Lm3@127.0.0.1:1/", "Rt6Yb"),
        ("user:Rt6Yb!Lm3@api.notte.cc", "Rt6Yb"),
        ("http://Rt6Yb:@[::1", "Rt6Yb"),
    ],
)
def test_user_info_in_the_api_url_is_refused_and_never_repeated(url: str, secret: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, "notte_api_url": url})
    assert caught.value.problems == [
        "--notte.api-url (NOTTE_API_URL): must not hold a user name or password (before @): "
        "the key goes in NOTTE_API_KEY or --notte.api-key-file"
    ]


@pytest.mark.parametrize(
    "url", ["https://api.notte.cc/?token=sk-Hd72Lw", "https://api.notte.cc#sk-Hd72Lw", "http://h?"]
)
def test_a_query_string_or_fragment_in_the_api_url_is_refused_unquoted(url: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, "notte_api_url": url})
    [problem] = caught.value.problems
    assert "must not have a query string or fragment" in problem
    assert "Hd72Lw" not in problem


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://[::1", "'http://[::1' is not a valid URL (Invalid IPv6 URL)"),
        ("http://127.0.0.1:port", "'http://127.0.0.1:port' is not a valid URL"),
        ("http://127.0.0.1:99999", "'http://127.0.0.1:99999': port 99999 is out of range 1-65535"),
        ("http://127.0.0.1:0/", "'http://127.0.0.1:0/': port 0 is out of range 1-65535"),
        ("http:///sessions", "'http:///sessions' is not an http(s) URL"),
        ("https://api.notte .cc", "'https://api.notte .cc' contains a space"),
    ],
)
def test_a_malformed_api_url_is_a_settings_problem(url: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, "notte_api_url": url})
    assert words in str(caught.value)


def test_every_duration_longer_than_a_year_is_refused_as_written() -> None:
    durations = [name for name, field in Settings.model_fields.items() if is_duration(field)]
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, **dict.fromkeys(durations, "366d")})
    assert caught.value.problems == [
        f"{names(name)}: must be at most 1y, got 366d" for name in durations
    ]


def test_a_year_is_the_longest_duration_and_polls_still_succeed_with_it(make_exporter) -> None:
    year = 365 * 86400.0
    exporter = make_exporter(
        poll_interval=year,
        poll_timeout=year - 86400,
        notte_timeout=year,
        sessions_idle_threshold=year,
        sessions_overdue_grace=year,
        sessions_pending_timeout=year,
        usage_interval=year,
        collector_usage=True,
    )
    assert exporter.poll_once().ok
    assert exporter.registry.get_sample_value("notte_up") == 1


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("kind", "problem"), NOT_KEY_FILES)
def test_a_key_file_that_is_no_regular_file_of_at_most_64_kib_is_refused(
    tmp_path, kind: str, problem: str
) -> None:
    path = tmp_path / "api-key"
    make_not_a_key_file(path, kind)
    with pytest.raises(SettingsError) as caught:
        load_settings({"notte_api_key_file": str(path)})
    assert caught.value.problems == [
        f"--notte.api-key-file (NOTTE_EXPORTER_NOTTE_API_KEY_FILE): {str(path)!r}: {problem}"
    ]


def test_a_config_file_needs_no_api_key() -> None:
    settings = load_settings({"config_file": "/etc/notte-exporter/accounts.yaml"})
    assert settings.config_file == Path("/etc/notte-exporter/accounts.yaml")
    assert settings.notte_api_key is None


@pytest.mark.parametrize(
    ("overrides", "environment", "given"),
    [
        ({"notte_api_url": "http://127.0.0.1:1"}, {}, "--notte.api-url (NOTTE_API_URL)"),
        ({}, {"NOTTE_API_URL": "http://127.0.0.1:1"}, "--notte.api-url (NOTTE_API_URL)"),
        ({}, {"NOTTE_API_KEY": API_KEY}, "NOTTE_API_KEY"),
        (
            {"notte_api_key_file": "/run/key"},
            {"NOTTE_API_KEY": API_KEY},
            "--notte.api-key-file (NOTTE_EXPORTER_NOTTE_API_KEY_FILE)",
        ),
    ],
)
def test_a_config_file_with_the_single_accounts_settings_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, overrides: dict, environment: dict, given: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings({"config_file": "/etc/accounts.yaml", **overrides})
    assert caught.value.problems == [
        "--config.file (NOTTE_EXPORTER_CONFIG_FILE): names every account's api_url and "
        f"key_file, so it cannot be used with {given}; leave it out"
    ]
    assert API_KEY not in str(caught.value)


def test_a_config_file_with_the_url_and_a_key_names_both_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTTE_API_KEY", API_KEY)
    with pytest.raises(SettingsError) as caught:
        load_settings({"config_file": "/etc/accounts.yaml", "notte_api_url": "http://h:1"})
    assert caught.value.problems == [
        "--config.file (NOTTE_EXPORTER_CONFIG_FILE): names every account's api_url and "
        "key_file, so it cannot be used with --notte.api-url (NOTTE_API_URL) and "
        "NOTTE_API_KEY; leave them out"
    ]


def test_a_config_file_with_demo_is_an_error() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"config_file": "/etc/accounts.yaml", "demo": True})
    assert caught.value.problems == [
        "--config.file (NOTTE_EXPORTER_CONFIG_FILE): cannot be used with --demo, which "
        "simulates accounts of its own; leave one of them out"
    ]


def test_a_config_file_with_an_invalid_url_reports_the_url_alone() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"config_file": "/etc/accounts.yaml", "notte_api_url": "ftp://h"})
    [problem] = caught.value.problems
    assert problem.startswith("--notte.api-url (NOTTE_API_URL): ")


@pytest.mark.parametrize(
    ("override", "given", "instead"),
    [
        (
            {"sessions_limit": 50},
            "--sessions.limit (NOTTE_EXPORTER_SESSIONS_LIMIT)",
            "set sessions_limit on each account in the file",
        ),
        (
            {"reaper_config_file": "/etc/reaper.yaml"},
            "--reaper.config.file (NOTTE_EXPORTER_REAPER_CONFIG_FILE)",
            "set reaper_config_file on each account in the file",
        ),
        (
            {"notte_only_current_token": True},
            "--notte.only-current-token (NOTTE_EXPORTER_NOTTE_ONLY_CURRENT_TOKEN)",
            "each account's key lists all of its sessions, and named keys attribute them",
        ),
    ],
    ids=["sessions-limit", "reaper", "only-current-token"],
)
def test_a_config_file_refuses_what_it_sets_per_account(
    override: dict, given: str, instead: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"config_file": "/etc/accounts.yaml", **override})
    assert caught.value.problems == [
        f"--config.file (NOTTE_EXPORTER_CONFIG_FILE): cannot be used with {given}: {instead}; "
        "leave it out"
    ]
