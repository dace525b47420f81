"""Validated settings: flags and environment variables, checked once at start-up.

Each setting is one field of ``Settings`` and everything about it is declared there: type,
default, limits, description, and (in its ``Option``, see options.py) flag, environment
variable, placeholder and help group. Flags win over the environment, and that includes
the key: ``--notte.api-key-file`` on the command line beats ``NOTTE_API_KEY``. The key has
no flag on purpose: command lines are visible to every user of the machine.

Problems are reported all at once, each under the names the operator can set: a value
pydantic refuses is mapped back through its field, and a problem between settings
(``Problem``) names the field it is attached to and the fields it involves, so a conflict
is reported only when the settings it involves are valid on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import (
    ByteSize,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from notte_exporter.durations import format_duration, parse_duration
from notte_exporter.files import unreadable
from notte_exporter.keys import ENV_SOURCE, file_source, key_problem, read_key_file
from notte_exporter.options import (
    DURATION,
    Environment,
    Option,
    choices_of,
    env_of,
    flag_of,
    is_duration,
    names_of,
    option_of,
)

DEFAULT_PORT = 10717
POLL_TIMEOUT_SHARE = 0.8

# The longest duration a setting takes: far beyond any sensible interval or threshold, and
# well short of where date arithmetic overflows and fails every poll.
MAX_DURATION = "1y"
MAX_DURATION_SECONDS = parse_duration(MAX_DURATION)
_API_URL_EXAMPLE = "https://api.notte.cc"
# Room for several pages of 100 sessions, and well below what would strain the process.
_RESPONSE_SIZES = (ByteSize(1024**2), ByteSize(256 * 1024**2))
_BYTE_SIZE = TypeAdapter(ByteSize)

_LISTEN_ADDRESS = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]*):(?P<port>\d{1,5})$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    # web
    web_listen_address: Annotated[list[str], Option("web", "ADDRESS", repeatable=True)] = Field(
        [f":{DEFAULT_PORT}"],
        description="Address to serve on, host:port (:port = all); repeat the flag (or "
        "separate by commas) to listen on several.",
    )
    web_max_requests: Annotated[int, Option("web", "N")] = Field(
        40,
        ge=1,
        le=10_000,
        description="Requests served at once on worker threads (status page, password "
        "checks, filtered scrapes); more wait their turn. Scrapes and probes need no thread.",
    )
    web_config_file: Annotated[Path | None, Option("web", "PATH", flag="--web.config.file")] = (
        Field(
            None,
            description="Web config in exporter-toolkit's format (TLS, basic auth, headers); "
            "re-read when it changes and on SIGHUP.",
        )
    )
    web_telemetry_path: Annotated[str, Option("web", "PATH")] = Field(
        "/metrics", description="Path of the metrics endpoint."
    )
    web_disable_exporter_metrics: Annotated[bool, Option("web")] = Field(
        False, description="Leave out the process_*, python_gc_* and python_info metrics."
    )
    # Notte API
    config_file: Annotated[Path | None, Option("Notte API", "PATH")] = Field(
        None,
        description="YAML file naming every account to watch, its API URL and key file, and "
        "the named keys its sessions are attributed to; replaces --notte.api-url, "
        "--notte.api-key-file and NOTTE_API_KEY.",
    )
    notte_api_url: Annotated[str, Option("Notte API", "URL", env="NOTTE_API_URL")] = Field(
        "https://api.notte.cc", description="Base URL of the Notte API."
    )
    notte_api_key: Annotated[
        SecretStr | None, Option("Notte API", flag=None, env="NOTTE_API_KEY")
    ] = Field(None, description="API key (environment only, never a flag).")
    notte_api_key_file: Annotated[Path | None, Option("Notte API", "PATH")] = Field(
        None, description="File holding the API key, e.g. a mounted Secret; re-read on change."
    )
    notte_page_size: Annotated[int, Option("Notte API", "N")] = Field(
        100, ge=1, le=100, description="Sessions per page (1-100)."
    )
    notte_max_pages: Annotated[int, Option("Notte API", "N")] = Field(
        50, ge=1, le=10_000, description="Most pages read per listing, so has_next cannot loop."
    )
    notte_concurrency: Annotated[int, Option("Notte API", "N")] = Field(
        4,
        ge=1,
        le=16,
        description="Most API requests of a poll in flight at once (1 = one at a time): "
        "pages of the live listing, and the history's first page; fewer when the API answers "
        "faster than a page is read, one at a time while the rate limit runs low.",
    )
    notte_only_current_token: Annotated[bool, Option("Notte API")] = Field(
        False, description="Only watch sessions started with this API key."
    )
    notte_timeout: Annotated[float, Option("Notte API", DURATION)] = Field(
        10.0, gt=0, description="Timeout of one HTTP request."
    )
    notte_retries: Annotated[int, Option("Notte API", "N")] = Field(
        3, ge=0, le=10, description="Retries of a failed request after the first attempt."
    )
    notte_max_response_bytes: Annotated[ByteSize, Option("Notte API", "SIZE")] = Field(
        # Written as operators write it, for --help and the README; validated into bytes.
        "8MiB",  # type: ignore[assignment]
        description="Most bytes one answer of the API may hold, decompressed (e.g. 8MiB, "
        "16MiB); a larger one fails the request as invalid_response.",
    )
    # polling
    poll_interval: Annotated[float, Option("polling", DURATION)] = Field(
        30.0, ge=1, description="How often to poll the Notte API."
    )
    poll_timeout: Annotated[float | None, Option("polling", DURATION)] = Field(
        None, gt=0, description="Time budget of one poll (default 80% of --poll.interval)."
    )
    # sessions
    sessions_limit: Annotated[int | None, Option("sessions", "N")] = Field(
        None, ge=1, description="Plan limit of sessions at once, exposed as notte_sessions_limit."
    )
    sessions_detail_limit: Annotated[int, Option("sessions", "N")] = Field(
        20, ge=0, le=1000, description="Oldest live sessions exposed by id (0 turns off)."
    )
    sessions_idle_threshold: Annotated[float, Option("sessions", DURATION)] = Field(
        60.0, ge=0, description="Idle time after which a live session counts as idle."
    )
    sessions_overdue_grace: Annotated[float, Option("sessions", DURATION)] = Field(
        60.0, ge=0, description="Grace past a session's own timeouts before it is overdue."
    )
    sessions_lookup_budget: Annotated[int, Option("sessions", "N")] = Field(
        10,
        ge=0,
        le=1000,
        description="API requests per poll to learn how sessions ended; raise it on accounts "
        "with hundreds of live sessions.",
    )
    sessions_pending_timeout: Annotated[float, Option("sessions", DURATION)] = Field(
        900.0,
        ge=1,
        description="How long to keep trying to learn how a vanished session ended before "
        "counting its end as unknown.",
    )
    # usage
    collector_usage: Annotated[bool, Option("usage", negatable=True)] = Field(
        True, description="Read the account's spend and credits from GET /usage."
    )
    usage_interval: Annotated[float, Option("usage", DURATION)] = Field(
        300.0, ge=1, description="How often to read GET /usage; each read costs one request."
    )
    # reaper
    reaper_config_file: Annotated[
        Path | None, Option("reaper", "PATH", flag="--reaper.config.file")
    ] = Field(
        None,
        description="Policy file of the session reaper, which stops sessions past your own "
        "limits (dry run unless the file says otherwise); without it nothing is ever "
        "stopped. Re-read when it changes and on SIGHUP.",
    )
    # logging
    log_level: Annotated[
        Literal["debug", "info", "warn", "warning", "error"], Option("logging")
    ] = Field("info", description="Least severe level logged.")
    log_format: Annotated[Literal["logfmt", "json"], Option("logging")] = Field(
        "logfmt", description="Log line format."
    )
    # demo
    demo: Annotated[bool, Option("demo")] = Field(
        False, description="Watch a built-in simulated Notte API; no key needed."
    )
    demo_profile: Annotated[Literal["steady", "leak"], Option("demo")] = Field(
        "steady", description="Simulated account of --demo."
    )
    demo_seed: Annotated[int, Option("demo", "N")] = Field(
        1, description="Seed of the simulated account."
    )
    demo_speed: Annotated[float, Option("demo", "FACTOR")] = Field(
        1.0, gt=0, le=10_000, description="How much faster simulated sessions live and die."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (passed as init values) first, then each setting's own variable.
        return init_settings, Environment(settings_cls)

    @field_validator("*", mode="before")
    @classmethod
    def _as_declared(cls, value: Any, info: ValidationInfo) -> Any:
        """Read the value in the syntax its Option declares (durations, choices, lists).

        No duration exceeds ``MAX_DURATION``, whichever way it came (flag, variable, code).
        """
        assert info.field_name is not None
        field = cls.model_fields[info.field_name]
        if is_duration(field) and isinstance(value, str | int | float):
            seconds = parse_duration(value) if isinstance(value, str) else value
            if seconds > MAX_DURATION_SECONDS:
                shown = value.strip() if isinstance(value, str) else format_duration(seconds)
                raise ValueError(f"must be at most {MAX_DURATION}, got {shown}")
            return seconds
        if isinstance(value, str) and choices_of(field):
            return value.lower()
        if isinstance(value, str) and option_of(field).repeatable:
            return [value]
        return value

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
    def _listen_address(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"give at least one host:port (e.g. :{DEFAULT_PORT})")
        for address in value:
            match = _LISTEN_ADDRESS.match(address)
            if match is None or not 0 <= int(match["port"]) <= 65535:
                raise ValueError(
                    f"{address!r} is not host:port (e.g. :{DEFAULT_PORT} or 127.0.0.1:80)"
                )
        return value

    @field_validator("notte_max_response_bytes", mode="before")
    @classmethod
    def _response_size(cls, value: Any) -> ByteSize:
        try:
            size = _BYTE_SIZE.validate_python(value)
        except ValidationError:
            raise ValueError(
                f"{value!r} is not a size such as 8MiB, 16MiB or 10000000 (bytes)"
            ) from None
        low, high = _RESPONSE_SIZES
        if not low <= size <= high:
            raise ValueError(
                f"must be between {low.human_readable()} and {high.human_readable()}, "
                f"got {size.human_readable()}"
            )
        return size

    @field_validator("web_telemetry_path")
    @classmethod
    def _telemetry_path(cls, value: str) -> str:
        if not value.startswith("/") or value in ("/", "/healthz", "/readyz"):
            raise ValueError("must start with / and not be /, /healthz or /readyz")
        return value

    @field_validator("notte_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        problem = api_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value.rstrip("/")

    @property
    def effective_poll_timeout(self) -> float:
        if self.poll_timeout is not None:
            return self.poll_timeout
        return self.poll_interval * POLL_TIMEOUT_SHARE

    @property
    def listen_addresses(self) -> list[tuple[str, int]]:
        """Every (host, port) to listen on; host "" means every interface."""
        pairs = []
        for address in self.web_listen_address:
            match = _LISTEN_ADDRESS.match(address)
            assert match is not None  # validated above
            pairs.append((match["host"].strip("[]"), int(match["port"])))
        return pairs

    @property
    def listen_host_port(self) -> tuple[str, int]:
        return self.listen_addresses[0]


def api_url_problem(value: str, *, key_goes_in: str = "") -> str | None:
    """What is wrong with a base URL of the Notte API, or None: http(s), a host, a path.

    ``key_goes_in`` says where the key belongs instead of the URL (by default, the settings
    of single mode).

    User info would go out as Basic auth in place of the key's Bearer header, and a query
    string or fragment would be cut off the paths the client adds; both are refused. Both are
    also where a key may sit, percent-encoded past redaction's reach: a URL with ``@``, ``?``
    or ``#`` is never quoted, nor is any part of it.
    """
    scheme, separator, rest = value.partition("://")
    authority = re.split(r"[/?#]", rest if separator else scheme, maxsplit=1)[0]
    if "@" in authority:
        where = key_goes_in or f"{env_name('notte_api_key')} or {flag_name('notte_api_key_file')}"
        return f"must not hold a user name or password (before @): the key goes in {where}"
    if "?" in value or "#" in value:
        return (
            "must not have a query string or fragment (? or #); give the base URL alone, "
            f"e.g. {_API_URL_EXAMPLE}"
        )
    shown = "the URL" if "@" in value else repr(value)
    if any(char.isspace() for char in value):
        return f"{shown} contains a space or a line break"
    try:
        # The standard library's parser says best what is wrong; httpx's is the one that counts.
        urlsplit(value)
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError) as exc:
        reason = f" ({exc})" if "@" not in value else ""
        return f"{shown} is not a valid URL{reason}; give the base URL, e.g. {_API_URL_EXAMPLE}"
    if url.scheme not in ("http", "https") or not url.host:
        return f"{shown} is not an http(s) URL such as {_API_URL_EXAMPLE}"
    if url.port is not None and not 1 <= url.port <= 65535:
        return f"{shown}: port {url.port} is out of range 1-65535"
    return None


def names(field: str) -> str:
    """The documented names of a setting, as messages show them."""
    return names_of(field, Settings.model_fields[field])


def flag_name(field: str) -> str:
    """The flag of a setting (``poll_interval`` -> ``--poll.interval``), for messages."""
    flag = flag_of(field, Settings.model_fields[field])
    assert flag is not None, f"{field} has no flag"
    return flag


def env_name(field: str) -> str:
    """The environment variable of a setting, for messages."""
    return env_of(field, Settings.model_fields[field])


@dataclass(frozen=True)
class Problem:
    """Something wrong with the settings: attached to ``field``, depending on ``involves``."""

    field: str
    message: str
    involves: frozenset[str] = frozenset()

    def __str__(self) -> str:
        if self.field not in Settings.model_fields:
            return self.message
        return f"{names(self.field)}: {self.message}"


class SettingsError(Exception):
    """Everything wrong with the settings, as lines fit to print."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = [str(problem) for problem in problems]
        super().__init__("\n".join(self.problems))


class WebConfigError(Exception):
    """Everything wrong with a web config file (web/config.py), as lines fit to print.

    Here rather than in web/config.py, so that catching it at start-up does not load what
    only a web config needs (YAML, bcrypt, its models): most exporters run without one.
    """

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.path = path
        self.problems = problems


class AccountsConfigError(Exception):
    """Everything wrong with the accounts file (``--config.file``, accounts.py), one line each.

    Beside the other config errors, so that the command line reports them all alike (exit 2).
    No line holds a key's value: the loader redacts every line with the keys it has read.
    """

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.path = path
        self.problems = problems


class ReaperConfigError(Exception):
    """Everything wrong with the reaper's policy file (reaper/policy.py), as lines fit to print.

    Here for the reason WebConfigError is: catching it at start-up must not load what only
    the reaper needs, and most exporters run without one.
    """

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.path = path
        self.problems = problems


def load_settings(overrides: dict[str, Any]) -> Settings:
    """Build settings from flags (``overrides``) over the environment, checking everything."""
    if overrides.get("notte_api_key_file") is not None and "notte_api_key" not in overrides:
        # Flags win: a key file named on the command line beats NOTTE_API_KEY.
        overrides = {**overrides, "notte_api_key": None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise SettingsError(problems + _problems_besides(overrides, problems)) from None
    problems = cross_check(settings)
    if problems:
        raise SettingsError(problems)
    return settings


def _problems_besides(overrides: dict[str, Any], invalid: list[Problem]) -> list[Problem]:
    """Cross-setting problems among the settings that are valid on their own.

    Reporting them with the field errors spares the operator a second failed start; the
    invalid settings stand in at their defaults, and a problem that involves one of them
    is left out (it would be about a value nobody chose).
    """
    failing = {problem.field for problem in invalid}
    if not failing <= set(Settings.model_fields):
        return []
    valid = {name: value for name, value in overrides.items() if name not in failing}
    defaults = {name: Settings.model_fields[name].default for name in failing}
    try:
        settings = Settings(**valid, **defaults)
    except ValidationError:
        return []
    return [p for p in cross_check(settings) if not ({p.field} | p.involves) & failing]


_LIMITS = {
    "greater_than_equal": ("ge", "must be at least"),
    "greater_than": ("gt", "must be more than"),
    "less_than_equal": ("le", "must be at most"),
    "less_than": ("lt", "must be less than"),
}


def _describe(error: Any) -> Problem:
    field = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden" or field not in Settings.model_fields:
        return Problem("", f"unknown setting {field!r}")
    if error["type"] in _LIMITS:
        key, words = _LIMITS[error["type"]]
        show = format_duration if is_duration(Settings.model_fields[field]) else _number
        limit, got = error["ctx"][key], error["input"]
        # Only numbers have limits, and no secret is a number: the value may be shown.
        got_text = show(got) if isinstance(got, int | float) else str(got)
        return Problem(field, f"{words} {show(limit)}, got {got_text}")
    if error["type"] == "literal_error":
        allowed = ", ".join(choices_of(Settings.model_fields[field]))
        return Problem(field, f"must be one of {allowed}")
    return Problem(field, str(error["msg"]).removeprefix("Value error, "))


def _number(value: float) -> str:
    return f"{value:g}"


def cross_check(settings: Settings) -> list[Problem]:
    """Problems that involve several settings at once."""
    problems = []
    if settings.effective_poll_timeout >= settings.poll_interval:
        problems.append(
            Problem(
                "poll_timeout",
                f"{format_duration(settings.effective_poll_timeout)} must be shorter than "
                f"{flag_name('poll_interval')} ({format_duration(settings.poll_interval)}), "
                "so that polls never overlap",
                frozenset({"poll_interval"}),
            )
        )
    if settings.config_file is not None:
        problems.extend(_config_file_conflicts(settings))
    elif not settings.demo:
        key_settings = frozenset({"demo", "notte_api_key_file"})
        if settings.notte_api_key is None and settings.notte_api_key_file is None:
            problems.append(
                Problem(
                    "notte_api_key",
                    f"no API key; set this variable, or {flag_name('notte_api_key_file')} to a "
                    "file holding the key (create one in the Notte console), or run with "
                    f"{flag_name('demo')} to try the exporter on simulated data",
                    key_settings,
                )
            )
        elif settings.notte_api_key is None and settings.notte_api_key_file is not None:
            problems.extend(_key_file_problems(settings.notte_api_key_file))
    return problems


# What --config.file replaces: the one account of single mode.
_SINGLE_ACCOUNT = ("notte_api_url", "notte_api_key", "notte_api_key_file")
# Settings of the one account that the config file sets per account, and where.
_PER_ACCOUNT = {
    "sessions_limit": "set sessions_limit on each account in the file",
    "reaper_config_file": "set reaper_config_file on each account in the file",
    "notte_only_current_token": (
        "each account's key lists all of its sessions, and named keys attribute them"
    ),
}


def _config_file_conflicts(settings: Settings) -> list[Problem]:
    """--config.file names every account and key: the single account's settings must not be set.

    A setting counts as given when a flag or variable set it (not when it keeps its
    default), and the key variable when it holds a key (a key file flag clears it).
    """
    given = [
        field
        for field in _SINGLE_ACCOUNT
        if field in settings.model_fields_set and getattr(settings, field) is not None
    ]
    problems = []
    if given:
        listed = " and ".join(names(field) for field in given)
        problems.append(
            Problem(
                "config_file",
                f"names every account's api_url and key_file, so it cannot be used with "
                f"{listed}; leave {'it' if len(given) == 1 else 'them'} out",
                frozenset(given),
            )
        )
    for field, instead in _PER_ACCOUNT.items():
        if field in settings.model_fields_set and getattr(settings, field) not in (None, False):
            problems.append(
                Problem(
                    "config_file",
                    f"cannot be used with {names(field)}: {instead}; leave it out",
                    frozenset({field}),
                )
            )
    if settings.demo:
        problems.append(
            Problem(
                "config_file",
                f"cannot be used with {flag_name('demo')}, which simulates accounts of its own; "
                "leave one of them out",
                frozenset({"demo"}),
            )
        )
    return problems


def key_source(settings: Settings) -> str:
    """Where the key comes from, in words fit for a log line."""
    if settings.notte_api_key is None and settings.notte_api_key_file is not None:
        return file_source(settings.notte_api_key_file)
    return ENV_SOURCE


def _key_file_problems(path: Path) -> list[Problem]:
    involves = frozenset({"demo", "notte_api_key"})
    try:
        _, problem = read_key_file(path)
    except OSError as exc:
        return [Problem("notte_api_key_file", f"{str(path)!r}: {unreadable(exc)}", involves)]
    if problem is None:
        return []
    return [Problem("notte_api_key_file", f"{str(path)!r}: the key {problem}", involves)]
