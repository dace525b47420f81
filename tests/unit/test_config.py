import pytest
from pydantic import SecretStr

from notte_exporter.config import SettingsError, env_of, flag_of, load_settings


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTTE_EXPORTER_POLL_INTERVAL", "1m")
    assert load_settings({"demo": True, "poll_interval": "45s"}).poll_interval == 45


def test_the_sdk_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTTE_API_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("NOTTE_API_KEY", "sk-env")
    settings = load_settings({})
    assert settings.notte_api_url == "http://127.0.0.1:1"
    assert isinstance(settings.notte_api_key, SecretStr)


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
    ],
)
def test_invalid_values_name_the_flag_and_the_problem(overrides: dict, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, **overrides})
    assert words in str(caught.value)


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
    assert flag_of("notte_api_key_file") == "--notte.api-key-file"
    assert flag_of("demo") == "--demo"
    assert env_of("sessions_lookup_budget") == "NOTTE_EXPORTER_SESSIONS_LOOKUP_BUDGET"


def test_a_missing_key_is_reported_along_with_invalid_values() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"poll_interval": "soon", "log_level": "loud"})
    problems = caught.value.problems
    assert len(problems) == 3
    assert any(p.startswith("--poll.interval") for p in problems)
    assert any(p.startswith("--log.level") for p in problems)
    assert any(p.startswith("no API key") for p in problems)


def test_a_timing_conflict_is_reported_along_with_invalid_values() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, "poll_timeout": "1m", "log_format": "xml"})
    assert len(caught.value.problems) == 2
    assert "must be shorter than --poll.interval" in str(caught.value)
