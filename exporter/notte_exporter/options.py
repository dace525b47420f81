"""How a setting meets the operator: its flag, environment variable, placeholder and group.

A setting is one field of ``config.Settings``, annotated with an ``Option``::

    poll_interval: Annotated[float, Option("polling", "DURATION")] = Field(30.0, ge=1, ...)

and that is the only place its names are declared: the command line (cli.py), the
environment (``Environment`` below), every error message (settings.py), ``--help`` and the
README check all read them from here, so a name cannot drift between them. Names follow the
Go exporters' rule unless an option says otherwise: field ``notte_api_key_file`` is flag
``--notte.api-key-file`` and variable ``NOTTE_EXPORTER_NOTTE_API_KEY_FILE``.

What the field's type already says is not repeated: a ``bool`` is a switch (``--demo``), or
``--[no-]name`` with ``negatable=True``; a ``Literal`` lists the choices; a ``list[str]`` with
``repeatable=True`` takes the flag several times (or a comma-separated variable). The
placeholder ``DURATION`` makes the value a duration (durations.py), shown in that syntax.
"""

from __future__ import annotations

import os
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

from notte_exporter.durations import format_duration

ENV_PREFIX = "NOTTE_EXPORTER_"
DURATION = "DURATION"

Group = Literal["web", "Notte API", "polling", "sessions", "usage", "reaper", "logging", "demo"]
# The order of the groups in --help.
GROUPS: tuple[Group, ...] = typing.get_args(Group)


@dataclass(frozen=True)
class Option:
    """The command-line and environment face of one setting.

    ``placeholder`` names the kind of value in --help (DURATION, ADDRESS, PATH, URL, N, ...);
    switches and choices need none. ``flag=None`` means no flag at all (a secret must not
    appear in a command line, which every user of the machine can read); ``flag``/``env``
    left empty follow the naming rule.
    """

    group: Group
    placeholder: str | None = None
    flag: str | None = ""
    env: str = ""
    repeatable: bool = False
    negatable: bool = False


def option_of(field: FieldInfo) -> Option:
    options = [item for item in field.metadata if isinstance(item, Option)]
    if len(options) != 1:
        raise TypeError(f"a setting needs exactly one Option in its annotation: {field}")
    return options[0]


def flag_of(name: str, field: FieldInfo) -> str | None:
    """``notte_api_key_file`` -> ``--notte.api-key-file`` (None: the setting has no flag)."""
    option = option_of(field)
    if option.flag is None or option.flag:
        return option.flag
    group, _, rest = name.partition("_")
    return f"--{group}.{rest.replace('_', '-')}" if rest else f"--{group}"


def env_of(name: str, field: FieldInfo) -> str:
    """``sessions_lookup_budget`` -> ``NOTTE_EXPORTER_SESSIONS_LOOKUP_BUDGET``."""
    return option_of(field).env or ENV_PREFIX + name.upper()


def names_of(name: str, field: FieldInfo) -> str:
    """How messages name a setting: ``--poll.interval (NOTTE_EXPORTER_POLL_INTERVAL)``."""
    flag, env = flag_of(name, field), env_of(name, field)
    return f"{flag} ({env})" if flag else env


def is_duration(field: FieldInfo) -> bool:
    return option_of(field).placeholder == DURATION


def choices_of(field: FieldInfo) -> tuple[str, ...]:
    """The allowed values of a ``Literal`` setting (optional or not), else ()."""
    annotation = field.annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is Literal:
        return tuple(str(choice) for choice in typing.get_args(annotation))
    return ()


def is_switch(field: FieldInfo) -> bool:
    return field.annotation is bool


def default_of(field: FieldInfo) -> str | None:
    """The default as --help and the README show it (None: no default worth showing)."""
    default = field.get_default(call_default_factory=True)
    if isinstance(default, list) and default:
        return ",".join(str(item) for item in default)  # as the variable takes it
    if isinstance(default, bool):
        return "on" if default else "off"
    if default is None or not isinstance(default, str | int | float):
        return None
    if is_duration(field) and not isinstance(default, str):
        return format_duration(default)
    return f"{default:g}" if isinstance(default, float) else str(default)


class Environment(PydanticBaseSettingsSource):
    """Reads each setting from its own variable, as declared by its Option.

    Replaces pydantic-settings' prefix-and-alias scheme, so that the name a value came from
    is the one documented and the one errors mention. A repeatable setting takes a
    comma-separated list.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raw = os.environ.get(env_of(field_name, field))
        if raw is not None and option_of(field).repeatable:
            return [part.strip() for part in raw.split(",") if part.strip()], field_name, False
        return raw, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, name)
            if value is not None:
                values[name] = value
        return values
