"""The accounts one exporter watches, and the named keys it attributes sessions to.

Without ``--config.file`` the exporter watches one account, given by ``--notte.api-url`` and
its key, and its series carry neither an ``account`` nor a ``key`` label. With it, the file
names every account (``name`` becomes the value of the ``account`` label) and, per account,
the named keys whose sessions are told apart (``key`` label; sessions no named key claims
are ``key="other"``). A key's *name* may appear anywhere; its value never does: every key
is an ``ApiKey`` sharing the process's one ``Secrets``, so the one redaction step removes
them all.

The file (``load_accounts``)::

    accounts:
      - name: prod                      # NAME_PATTERN, unique
        api_url: https://api.notte.cc   # optional: the default of --notte.api-url
        key_file: /etc/notte/prod/key   # lists every session of the account
        sessions_limit: 100             # optional
        reaper_config_file: reaper.yaml # optional; only checked to be readable here
        keys:                           # optional
          - name: checkout-agent        # NAME_PATTERN, unique within the account, not "other"
            key_file: /etc/notte/prod/checkout

Invariants, and why:

- A file is taken whole or not at all, and everything wrong with it is said at once
  (``AccountsConfigError``, exit 2): one line per problem, naming where it is
  (``accounts[1].keys[0].key_file``). Unknown fields are errors, so a typo never silently
  drops a setting.
- Every key file is checked as ``--notte.api-key-file`` is (keys.py), and every value read
  is remembered for redaction before any message is made; every line of the error is then
  redacted. A key whose value is (part of) a name in the file is refused: redaction would
  otherwise blank that name in every label and log line.
- The file, like every file it names, is a regular file of bounded size (files.py), and a
  document whose aliases expand past ``MAX_VALUES`` values is refused before anything walks
  it: PyYAML shares an aliased value, so a few hundred bytes can stand for a billion.
- Relative paths start at the file's folder, so a file and its keys can move together.
- The file is read once, at start-up; the key files it names are re-read on use, on change
  and on SIGHUP (``reload_keys``), as ``ApiKey`` does.
- YAML is imported only when a file is loaded: most exporters run without one, and every
  module stays in memory for the life of the process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import ErrorDetails

from notte_exporter.files import WEB_FILE_BYTES, read_regular_file, unreadable
from notte_exporter.keys import ApiKey, read_key_file
from notte_exporter.redaction import Secrets
from notte_exporter.settings import AccountsConfigError, api_url_problem

# The value of the ``key`` label for sessions that no named key claims.
OTHER_KEY = "other"
# Names of accounts and keys: label values, and parts of file and Secret names in the chart.
NAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class NamedKey:
    """A key sessions are attributed to: its ``only_current_token`` listing holds them."""

    name: str
    key: ApiKey


@dataclass(frozen=True)
class Account:
    """One account: its API, the key that lists all of its sessions, and its named keys.

    ``keyed`` is True when the account comes from ``--config.file``: its series then carry
    ``account`` and ``key``, even with no named keys (every session is then ``other``).
    """

    name: str
    api_url: str
    key: ApiKey
    keys: tuple[NamedKey, ...] = ()
    sessions_limit: int | None = None
    reaper_config_file: Path | None = None
    keyed: bool = True


# --- The config file (``--config.file``) -------------------------------------------------

# A file far larger than any list of accounts, and small enough to read whole.
CONFIG_FILE_BYTES = WEB_FILE_BYTES
# Values in the document once its aliases are expanded: far above a hundred accounts of
# twenty keys each, and far below what a "billion laughs" file would make every check walk.
MAX_VALUES = 20_000
_NAME_RULE = "lower-case letters, digits and inner dashes, at most 63 of them"


@dataclass(frozen=True)
class _Context:
    """What checking a field needs beyond its value: where paths start, the keys, the names."""

    folder: Path
    secrets: Secrets
    names: frozenset[str]


def _context(info: ValidationInfo) -> _Context:
    assert isinstance(info.context, _Context), "validate with load_accounts' context"
    return info.context


def _name(value: str) -> str:
    if NAME_PATTERN.fullmatch(value) is None:
        shown = repr(value) if len(value) <= 63 else f"a name of {len(value)} characters"
        raise ValueError(f"{shown} is not a name: use {_NAME_RULE} (it becomes a label value)")
    return value


def _key_name(value: str) -> str:
    if value == OTHER_KEY:
        raise ValueError(
            f"{OTHER_KEY!r} is reserved: it labels the sessions no named key claims; "
            "choose another name"
        )
    return value


def _api_url(value: str) -> str:
    problem = api_url_problem(value, key_goes_in="key_file")
    if problem is not None:
        raise ValueError(problem)
    return value.rstrip("/")


def _path(value: object, info: ValidationInfo) -> Path:
    """A path as written: relative ones start at the config file's folder."""
    if not isinstance(value, str):
        raise ValueError("must be a path (text)")
    if not value.strip():
        raise ValueError("is empty; give the path of a file")
    path = Path(value)
    return path if path.is_absolute() else _context(info).folder / path


def _key_file(path: Path, info: ValidationInfo) -> Path:
    """A file holding one valid key that no name of the file contains; never quoted."""
    context = _context(info)
    try:
        value, problem = read_key_file(path)
    except OSError as exc:
        raise ValueError(f"{str(path)!r}: {unreadable(exc)}") from None
    if value:
        # Before any message is made: every line of the error is redacted with these.
        context.secrets.remember(value)
    if problem is not None:
        raise ValueError(f"{str(path)!r}: the key {problem}; the file must hold the key alone")
    if any(value in name for name in context.names):
        raise ValueError(
            f"{str(path)!r}: the key is also the name (or part of the name) of an account or "
            "key in this file; names are shown on every series and keys never are, so rename it"
        )
    return path


def _readable(path: Path) -> Path:
    try:
        read_regular_file(path, CONFIG_FILE_BYTES)
    except OSError as exc:
        raise ValueError(f"{str(path)!r}: {unreadable(exc)}") from None
    return path


def _none_is_empty(value: object) -> object:
    return () if value is None else value


Name = Annotated[str, AfterValidator(_name)]
FilePath = Annotated[Path, BeforeValidator(_path)]
KeyFile = Annotated[FilePath, AfterValidator(_key_file)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyEntry(_Strict):
    name: Annotated[Name, AfterValidator(_key_name)]
    key_file: KeyFile


class AccountEntry(_Strict):
    name: Name
    api_url: Annotated[str, AfterValidator(_api_url)] | None = None
    key_file: KeyFile
    sessions_limit: Annotated[StrictInt, Field(ge=1)] | None = None
    keys: Annotated[tuple[KeyEntry, ...], BeforeValidator(_none_is_empty)] = ()
    reaper_config_file: Annotated[FilePath, AfterValidator(_readable)] | None = None


class AccountsFile(_Strict):
    accounts: Annotated[
        tuple[AccountEntry, ...], BeforeValidator(_none_is_empty), Field(min_length=1)
    ]


# The fields a mapping may hold, by how deep it is (how many list indexes lead to it).
_FIELDS = (AccountsFile.model_fields, AccountEntry.model_fields, KeyEntry.model_fields)
_MISSING = {
    "accounts": "list the accounts to watch, each with a name and a key_file",
    "name": f"give a name ({_NAME_RULE})",
    "key_file": "give the path of a file holding the key",
}


def load_accounts(path: Path, *, default_api_url: str, secrets: Secrets) -> tuple[Account, ...]:
    """The accounts ``path`` names, every key file checked; raises AccountsConfigError.

    Every key read is remembered in ``secrets`` before any message is made, and every line of
    the error is redacted with them, so no key value leaves in a message whatever the file
    holds. Each key of the result reads its file again on use, as ``ApiKey`` does.
    """
    document = _document(path)
    names = _names(document)
    context = _Context(folder=path.parent, secrets=secrets, names=frozenset(names))
    problems: list[str] = []
    config = None
    try:
        config = AccountsFile.model_validate(document, context=context)
    except ValidationError as exc:
        problems.extend(filter(None, (_describe(error) for error in exc.errors())))
    problems.extend(_repeated_names(document))
    if problems or config is None:
        raise AccountsConfigError(path, [secrets.redact(problem) for problem in problems])
    return tuple(_account(entry, default_api_url, secrets) for entry in config.accounts)


def reload_keys(accounts: Iterable[Account]) -> list[str]:
    """Read every key file of ``accounts`` again (on SIGHUP); what changed, as logged."""
    changes = []
    for account in accounts:
        for key in (account.key, *(named.key for named in account.keys)):
            change = key.reload()
            if change is not None:
                changes.append(change)
    return changes


def _account(entry: AccountEntry, default_api_url: str, secrets: Secrets) -> Account:
    def key(path: Path, whose: str) -> ApiKey:
        return ApiKey(path=path, secrets=secrets, source=f"key_file {str(path)!r} of {whose}")

    return Account(
        name=entry.name,
        api_url=entry.api_url or default_api_url,
        key=key(entry.key_file, f"account {entry.name}"),
        keys=tuple(
            NamedKey(named.name, key(named.key_file, f"key {named.name} of {entry.name}"))
            for named in entry.keys
        ),
        sessions_limit=entry.sessions_limit,
        reaper_config_file=entry.reaper_config_file,
    )


def _document(path: Path) -> object:
    """The file's YAML document, or AccountsConfigError with the one reason it has none."""
    import yaml  # noqa: PLC0415  (only when a file is loaded: see the module)

    try:
        text = read_regular_file(path, CONFIG_FILE_BYTES).decode("utf-8")
    except OSError as exc:
        raise AccountsConfigError(path, [unreadable(exc)]) from None
    except UnicodeDecodeError:
        raise AccountsConfigError(path, ["not UTF-8 text"]) from None
    try:
        # libyaml's safe loader where PyYAML has it (its wheels do): Python's takes seconds
        # on a file at the size limit, and refuses deep nesting only by RecursionError.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load(text, Loader=loader)  # noqa: S506 (a safe loader)
    except (yaml.YAMLError, RecursionError) as exc:
        # RecursionError: Python's loader on deep nesting, which libyaml's refuses itself.
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise AccountsConfigError(path, [f"not valid YAML{line}"]) from None
    if not _within(document, MAX_VALUES):
        raise AccountsConfigError(
            path,
            [
                f"holds more than {MAX_VALUES} values once its aliases (*name) are expanded; "
                "write each account out"
            ],
        )
    return {} if document is None else document


def _within(document: object, limit: int) -> bool:
    """Whether ``document`` holds at most ``limit`` values, counting each alias's every use.

    safe_load shares an aliased value rather than copying it, so a small file can stand for
    a huge (or cyclic) document; counting stops at the limit, never walking the expansion.
    """
    pending, seen = [document], 0
    while pending:
        item = pending.pop()
        seen += 1
        if seen > limit:
            return False
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _mappings(document: object) -> Iterator[tuple[str, dict[Any, Any]]]:
    """Each account and named key the document holds as a mapping, with where it is."""
    accounts = document.get("accounts") if isinstance(document, dict) else None
    if not isinstance(accounts, list):
        return
    for index, account in enumerate(accounts):
        if not isinstance(account, dict):
            continue
        yield f"accounts[{index}]", account
        keys = account.get("keys")
        for number, key in enumerate(keys if isinstance(keys, list) else []):
            if isinstance(key, dict):
                yield f"accounts[{index}].keys[{number}]", key


def _names(document: object) -> list[str]:
    return [name for _, item in _mappings(document) if isinstance(name := item.get("name"), str)]


def _repeated_names(document: object) -> list[str]:
    """Account names used twice, and key names used twice within one account."""
    problems = []
    first: dict[tuple[str, str], str] = {}
    for where, item in _mappings(document):
        name = item.get("name")
        if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
            continue  # said already, and not quoted again (it may be long)
        # Keys are unique within their account: the scope is the account's place.
        scope = where.rsplit(".keys[", 1)[0] if ".keys[" in where else ""
        earlier = first.setdefault((scope, name), where)
        if earlier != where:
            kind = "key" if scope else "account"
            within = " in this account" if scope else ""
            problems.append(
                f"{where}.name: {name!r} is already the name of {earlier}; each {kind} needs "
                f"a name of its own{within}"
            )
    return problems


def _where(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "the file"


def _describe(error: ErrorDetails) -> str | None:
    """One line for one of pydantic's errors, or None for one that only repeats others."""
    location = tuple(error["loc"])
    where = _where(location)
    kind = error["type"]
    if kind == "extra_forbidden":
        fields = _FIELDS[min(sum(isinstance(part, int) for part in location), 2)]
        return f"{where}: unknown field; the fields are {', '.join(fields)}"
    if kind == "missing":
        field = str(location[-1]) if location else ""
        hint = _MISSING.get(field)
        return f"{where}: missing" + (f"; {hint}" if hint else "")
    if kind in ("model_type", "dict_type"):
        return f"{where}: must be a mapping (field: value)"
    if kind in ("tuple_type", "list_type"):
        return f"{where}: must be a list (one '- ' item each)"
    if kind == "too_short":
        # Pydantic also says the list is short when each of its items failed.
        return f"{where}: is empty; {_MISSING['accounts']}" if not error["input"] else None
    if kind in ("int_type", "greater_than_equal"):
        return f"{where}: must be a whole number of at least 1"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"
