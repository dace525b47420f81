"""Validated settings: flags and environment variables, checked once at start-up.

Each setting is a flag in the style of Go exporters (``--poll.interval``) and an environment
variable named after it (``NOTTE_EXPORTER_POLL_INTERVAL``); the Notte SDK's own variables
``NOTTE_API_URL`` and ``NOTTE_API_KEY`` work too. Flags win over the environment, and that
includes the key: ``--notte.api-key-file`` on the command line beats ``NOTTE_API_KEY``. The
key has no flag on purpose: command lines are visible to every user of the machine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .durations import format_duration, parse_duration
from .keys import ENV_SOURCE, file_source, key_problem, read_key_file

ENV_PREFIX = "NOTTE_EXPORTER_"
DEFAULT_PORT = 10717
POLL_TIMEOUT_SHARE = 0.8

_LISTEN_ADDRESS = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]*):(?P<port>\d{1,5})$")

DURATION_FIELDS = (
    "notte_timeout",
    "poll_interval",
    "poll_timeout",
    "sessions_idle_threshold",
    "sessions_overdue_grace",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    web_listen_address: str = Field(
        f":{DEFAULT_PORT}", description="Address to serve metrics on, host:port (:port = all)."
    )
    web_telemetry_path: str = Field("/metrics", description="Path of the metrics endpoint.")
    notte_api_url: str = Field(
        "https://api.notte.cc",
        validation_alias=AliasChoices("notte_api_url", "NOTTE_API_URL"),
        description="Base URL of the Notte API (env NOTTE_API_URL).",
    )
    notte_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("notte_api_key", "NOTTE_API_KEY"),
        description="API key (env NOTTE_API_KEY only, never a flag).",
    )
    notte_api_key_file: Path | None = Field(
        None, description="File holding the API key, e.g. a mounted Kubernetes Secret."
    )
    notte_page_size: int = Field(100, ge=1, le=100, description="Sessions per page (1-100).")
    notte_max_pages: int = Field(
        50, ge=1, le=10_000, description="Most pages read per listing, so has_next cannot loop."
    )
    notte_only_current_token: bool = Field(
        False, description="Only watch sessions started with this API key."
    )
    notte_timeout: float = Field(10.0, gt=0, description="Timeout of one HTTP request.")
    notte_retries: int = Field(
        3, ge=0, le=10, description="Retries of a failed request after the first attempt."
    )
    poll_interval: float = Field(30.0, ge=1, description="How often to poll the Notte API.")
    poll_timeout: float | None = Field(
        None, gt=0, description="Time budget of one poll (default 80% of --poll.interval)."
    )
    sessions_limit: int | None = Field(
        None, ge=1, description="Plan limit of sessions at once, exposed as notte_sessions_limit."
    )
    sessions_detail_limit: int = Field(
        20, ge=0, le=1000, description="Oldest live sessions exposed by id (0 turns off)."
    )
    sessions_idle_threshold: float = Field(
        60.0, ge=0, description="Idle time after which a live session counts as idle."
    )
    sessions_overdue_grace: float = Field(
        60.0, ge=0, description="Grace past a session's own timeouts before it is overdue."
    )
    sessions_lookup_budget: int = Field(
        10,
        ge=0,
        le=1000,
        description="API requests per poll to learn how sessions ended; raise it on accounts "
        "with hundreds of live sessions.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe level logged."
    )
    log_format: Literal["logfmt", "json"] = Field("logfmt", description="Log line format.")
    demo: bool = Field(False, description="Watch a built-in simulated Notte API; no key needed.")
    demo_profile: Literal["steady", "leak"] = Field(
        "steady", description="Simulated account of --demo."
    )
    demo_seed: int = Field(1, description="Seed of the simulated account.")
    demo_speed: float = Field(
        1.0, gt=0, le=10_000, description="How much faster simulated sessions live and die."
    )

    @field_validator(*DURATION_FIELDS, mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("log_level", "log_format", "demo_profile", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("notte_api_key")
    @classmethod
    def _api_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        stripped = value.get_secret_value().strip()
        problem = key_problem(stripped)
        if problem is not None:
            # The message names the problem only; errors are printed without their input.
            raise ValueError(f"the key {problem}")
        return SecretStr(stripped)

    @field_validator("web_listen_address")
    @classmethod
    def _listen_address(cls, value: str) -> str:
        match = _LISTEN_ADDRESS.match(value)
        if match is None or not 0 <= int(match["port"]) <= 65535:
            raise ValueError(f"{value!r} is not host:port (e.g. :{DEFAULT_PORT} or 127.0.0.1:80)")
        return value

    @field_validator("web_telemetry_path")
    @classmethod
    def _telemetry_path(cls, value: str) -> str:
        if not value.startswith("/") or value in ("/", "/healthz", "/readyz"):
            raise ValueError("must start with / and not be /, /healthz or /readyz")
        return value

    @field_validator("notte_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL such as https://api.notte.cc")
        return value.rstrip("/")

    @property
    def effective_poll_timeout(self) -> float:
        if self.poll_timeout is not None:
            return self.poll_timeout
        return self.poll_interval * POLL_TIMEOUT_SHARE

    @property
    def listen_host_port(self) -> tuple[str, int]:
        match = _LISTEN_ADDRESS.match(self.web_listen_address)
        assert match is not None  # validated above
        return match["host"].strip("[]"), int(match["port"])


def flag_of(field: str) -> str:
    """``notte_api_key_file`` -> ``--notte.api-key-file``."""
    group, _, rest = field.partition("_")
    return f"--{group}.{rest.replace('_', '-')}" if rest else f"--{group}"


def env_of(field: str) -> str:
    if field == "notte_api_key":
        return "NOTTE_API_KEY"
    return ENV_PREFIX + field.upper()


class SettingsError(Exception):
    """Everything wrong with the settings, as lines fit to print."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_settings(overrides: dict[str, Any]) -> Settings:
    """Build settings from flags (``overrides``) over the environment, checking everything."""
    if overrides.get("notte_api_key_file") is not None and "notte_api_key" not in overrides:
        # Flags win: a key file named on the command line beats NOTTE_API_KEY.
        overrides = {**overrides, "notte_api_key": None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        failing = {_field_of(error) for error in exc.errors()}
        problems = [_describe(error) for error in exc.errors()]
        raise SettingsError(problems + _problems_besides(overrides, failing)) from None
    problems = cross_check(settings)
    if problems:
        raise SettingsError(problems)
    return settings


def _field_of(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    return {"NOTTE_API_URL": "notte_api_url", "NOTTE_API_KEY": "notte_api_key"}.get(field, field)


def _problems_besides(overrides: dict[str, Any], failing: set[str]) -> list[str]:
    """Cross-setting problems among the settings that are valid on their own.

    Reporting them with the field errors spares the operator a second failed start.
    """
    if not failing <= set(Settings.model_fields):
        return []
    valid = {name: value for name, value in overrides.items() if name not in failing}
    defaults = {name: Settings.model_fields[name].default for name in failing}
    try:
        settings = Settings(**valid, **defaults)
    except ValidationError:
        return []
    timing = {"poll_interval", "poll_timeout"}
    key = {"demo", "notte_api_key", "notte_api_key_file"}
    return [
        problem
        for problem in cross_check(settings)
        if not (failing & timing and problem.startswith("--poll.timeout"))
        and not (failing & key and "key" in problem.lower())
    ]


def _describe(error: Any) -> str:
    field = _field_of(error) or "settings"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"unknown setting {field!r}"
    where = "NOTTE_API_KEY" if field == "notte_api_key" else f"{flag_of(field)} ({env_of(field)})"
    return f"{where}: {message}"


def cross_check(settings: Settings) -> list[str]:
    """Problems that involve several settings at once."""
    problems = []
    if settings.effective_poll_timeout >= settings.poll_interval:
        problems.append(
            f"--poll.timeout ({format_duration(settings.effective_poll_timeout)}) must be "
            f"shorter than --poll.interval ({format_duration(settings.poll_interval)}), "
            "so that polls never overlap"
        )
    if not settings.demo:
        if settings.notte_api_key is None and settings.notte_api_key_file is None:
            problems.append(
                "no API key: set NOTTE_API_KEY, or --notte.api-key-file to a file holding the "
                "key (create one in the Notte console); or run with --demo to try the exporter "
                "on simulated data"
            )
        elif settings.notte_api_key is None and settings.notte_api_key_file is not None:
            problems.extend(_key_file_problems(settings.notte_api_key_file))
    return problems


def key_source(settings: Settings) -> str:
    """Where the key comes from, in words fit for a log line."""
    if settings.notte_api_key is None and settings.notte_api_key_file is not None:
        return file_source(settings.notte_api_key_file)
    return ENV_SOURCE


def _key_file_problems(path: Path) -> list[str]:
    try:
        _, problem = read_key_file(path)
    except OSError as exc:
        return [f"{file_source(path)}: cannot read it: {exc.strerror or exc}"]
    return [] if problem is None else [f"{file_source(path)}: the key {problem}"]
