"""The reaper's policy file (``--reaper.config.file``): its model, its checks, its reloads.

    dry_run: true             # the default; stops happen only with an explicit false
    max_stops_per_poll: 5     # default 5
    max_stops_per_hour: 60    # default 60, a rolling hour
    exclude_sessions: []      # session ids never stopped
    policies:
      - name: idle-10m        # [a-z0-9-]+, unique; it becomes a label value
        idle_longer_than: 10m # idle = now - last_accessed_at
      - name: older-than-2h
        older_than: 2h        # age = now - created_at
        browser_types: [chrome, chromium]   # optional; the default is every type

Invariants, and why:

- A file is taken whole or not at all, and everything wrong with it is said at once
  (``ReaperConfigError``): one line per problem, naming where it is
  (``policies[1].older_than``). At start-up that stops the exporter (exit 2); while it
  runs, a broken edit keeps the last good policy and the log says why.
- Dry run is the default, and only a YAML ``false`` ends it: not ``"false"``, ``0`` or a
  missing key. A stop is the one thing the exporter does that cannot be undone.
- Durations use the project's one syntax (durations.py): ``10m``, ``1h30m``, ``90``.
- Only ``parse`` makes a ``ReaperPolicy``. The rules between fields (a policy gives a
  condition, names are unique, there is a policy at all) are checked on the document
  itself, so that they are reported even when a field is wrong too: pydantic runs a
  model's own validators only once all its fields passed.
- The file is fingerprinted by content and looked at again once a second (``watch``) and
  on SIGHUP (``reload``), as the web config is.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
)

from notte_exporter.durations import format_duration, parse_duration
from notte_exporter.files import WEB_FILE_BYTES, read_regular_file, unreadable
from notte_exporter.settings import MAX_DURATION, MAX_DURATION_SECONDS, ReaperConfigError

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0
MAX_NAME_LENGTH = 63
_NAME = re.compile(r"^[a-z0-9-]+$")
_DURATION_HINT = "a duration such as 10m, 1h30m or 90 (seconds)"


def _duration(value: object) -> float:
    if isinstance(value, str):
        seconds = parse_duration(value)  # its ValueError says what is wrong and what to write
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f"must be {_DURATION_HINT}")
    if not math.isfinite(seconds):
        raise ValueError(f"must be {_DURATION_HINT}")
    return seconds


def _name(value: str) -> str:
    if not _NAME.match(value) or len(value) > MAX_NAME_LENGTH:
        shown = (
            repr(value) if len(value) <= MAX_NAME_LENGTH else f"a name of {len(value)} characters"
        )
        raise ValueError(
            f"{shown} is not a policy name: use lower-case letters, digits and dashes "
            f"([a-z0-9-]+), at most {MAX_NAME_LENGTH} of them"
        )
    return value


# Bounded above like every duration setting, so that date arithmetic on it cannot overflow.
Duration = Annotated[float, BeforeValidator(_duration), Field(gt=0, le=MAX_DURATION_SECONDS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Policy(_Strict):
    """One policy: every condition it gives must hold for a session to match it."""

    name: Annotated[str, AfterValidator(_name)]
    idle_longer_than: Duration | None = None
    older_than: Duration | None = None
    # None: every browser type.
    browser_types: Annotated[tuple[str, ...], Field(min_length=1)] | None = None

    def conditions(self) -> str:
        """The policy in words, for the status page and the docs' examples."""
        parts = []
        if self.idle_longer_than is not None:
            parts.append(f"idle longer than {format_duration(self.idle_longer_than)}")
        if self.older_than is not None:
            parts.append(f"older than {format_duration(self.older_than)}")
        return " and ".join(parts)


class ReaperPolicy(_Strict):
    """A checked policy file; made by ``parse`` only (see the module's invariants)."""

    dry_run: StrictBool = True
    max_stops_per_poll: Annotated[StrictInt, Field(ge=1)] = 5
    max_stops_per_hour: Annotated[StrictInt, Field(ge=1)] = 60
    exclude_sessions: tuple[str, ...] = ()
    policies: tuple[Policy, ...] = ()


_TOP_KEYS = ", ".join(ReaperPolicy.model_fields)
_POLICY_KEYS = ", ".join(Policy.model_fields)


def parse(content: bytes, path: Path) -> ReaperPolicy:
    """The policy in ``content`` (the bytes of ``path``); raises ReaperConfigError."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise ReaperConfigError(path, ["not UTF-8 text"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ReaperConfigError(path, [f"not valid YAML{line}"]) from None
    except RecursionError:
        raise ReaperConfigError(path, ["nested too deeply to be a policy file"]) from None
    if document is None:
        document = {}
    if isinstance(document, dict) and "policies" in document and document["policies"] is None:
        # `policies:` with nothing under it: an empty list, said once (below), not twice.
        document = {**document, "policies": []}
    problems: list[str] = []
    policy: ReaperPolicy | None = None
    try:
        policy = ReaperPolicy.model_validate(document)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    problems.extend(_rules_between_fields(document))
    if problems or policy is None:
        raise ReaperConfigError(path, problems)
    return policy


def load(path: Path) -> tuple[ReaperPolicy, str]:
    """The policy in ``path`` and the fingerprint of its content; raises ReaperConfigError."""
    content = _read(path)
    return parse(content, path), _digest(content)


def _read(path: Path) -> bytes:
    try:
        return read_regular_file(path, WEB_FILE_BYTES)
    except OSError as exc:
        raise ReaperConfigError(path, [unreadable(exc)]) from None


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _rules_between_fields(document: object) -> list[str]:
    """What no single field shows: no policy, a policy without a condition, a name twice."""
    if not isinstance(document, dict):
        return []
    policies = document.get("policies", [])
    if isinstance(policies, list | tuple) and not policies:
        return [
            "policies: give at least one policy (a name, and idle_longer_than, older_than or both)"
        ]
    if not isinstance(policies, list | tuple):
        return []  # the model says it is not a list
    problems = []
    first: dict[str, int] = {}
    for index, item in enumerate(policies):
        if not isinstance(item, dict):
            continue
        if item.get("idle_longer_than") is None and item.get("older_than") is None:
            problems.append(
                f"policies[{index}]: give idle_longer_than, older_than or both (a policy "
                "without a condition would match every session)"
            )
        name = item.get("name")
        if isinstance(name, str):
            if name in first:
                problems.append(
                    f"policies[{index}].name: {name!r} is already the name of "
                    f"policies[{first[name]}]; names must be unique"
                )
            else:
                first[name] = index
    return problems


def _where(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "the file"


def _describe(error: Any) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    in_policy = len(loc) >= 2 and loc[0] == "policies"
    if kind == "extra_forbidden":
        known = _POLICY_KEYS if in_policy else _TOP_KEYS
        return f"{_where(loc)}: unknown key (known keys: {known})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        known = _POLICY_KEYS if in_policy else _TOP_KEYS
        return f"{_where(loc)}: must be a mapping of keys ({known})"
    if kind == "greater_than":
        # Only durations have a lower bound that is not included.
        got = error["input"]
        shown = format_duration(got) if isinstance(got, int | float) else str(got)
        return f"{_where(loc)}: must be more than 0s, got {shown}"
    if kind == "less_than_equal":
        # Only durations have an upper bound.
        got = error["input"]
        shown = format_duration(got) if isinstance(got, int | float) else str(got)
        return f"{_where(loc)}: must be at most {MAX_DURATION}, got {shown}"
    if kind == "greater_than_equal":
        return f"{_where(loc)}: must be at least {error['ctx']['ge']}, got {error['input']}"
    if kind == "too_short" and loc and loc[-1] == "browser_types":
        return f"{_where(loc)}: name at least one browser type, or leave the key out for every type"
    words = {
        "bool_type": "must be true or false",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "string_type": "must be text",
        "tuple_type": "must be a list",
        "list_type": "must be a list",
        "float_type": f"must be {_DURATION_HINT}",
        "missing": "missing",
    }
    if kind in words:
        return f"{_where(loc)}: {words[kind]}"
    return f"{_where(loc)}: {str(error['msg']).removeprefix('Value error, ')}"


def describe_change(old: ReaperPolicy, new: ReaperPolicy) -> str:
    """What a reload changed, in words for the log."""
    parts = []
    if old.dry_run != new.dry_run:
        parts.append(
            "dry run is off: matching sessions are stopped from now on"
            if not new.dry_run
            else "dry run is on: nothing is stopped from now on"
        )
    if (old.max_stops_per_poll, old.max_stops_per_hour) != (
        new.max_stops_per_poll,
        new.max_stops_per_hour,
    ):
        parts.append(
            f"limits are now {new.max_stops_per_poll} stops per poll and "
            f"{new.max_stops_per_hour} per hour"
        )
    if set(old.exclude_sessions) != set(new.exclude_sessions):
        parts.append(f"{len(set(new.exclude_sessions))} session(s) excluded")
    before = {policy.name: policy for policy in old.policies}
    after = {policy.name: policy for policy in new.policies}
    for verb, names in (
        ("added", [name for name in after if name not in before]),
        ("removed", [name for name in before if name not in after]),
        ("changed", [name for name in after if name in before and before[name] != after[name]]),
    ):
        if names:
            parts.append(f"policies {verb}: {', '.join(names)}")
    return "reaper config reloaded: " + ("; ".join(parts) or "nothing that matters changed")


class LivePolicy:
    """The current policy, re-read when the file changes; the last good one on errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # ReaperConfigError at start-up stops the exporter.
        self._policy, self._fingerprint = load(path)
        self._rejected: str | None = None

    @property
    def current(self) -> ReaperPolicy:
        return self._policy

    def reload(self) -> str | None:
        """Re-read the file if its content changed; returns what changed, or None."""
        with self._lock:
            try:
                content = read_regular_file(self.path, WEB_FILE_BYTES)
            except OSError as exc:
                stamp = f"unreadable {exc.errno}"
                problems = [unreadable(exc)]
            else:
                stamp, problems = _digest(content), []
            if stamp in (self._fingerprint, self._rejected):
                return None
            try:
                if problems:
                    raise ReaperConfigError(self.path, problems)
                policy = parse(content, self.path)
            except ReaperConfigError as exc:
                self._rejected = stamp
                log.error(
                    "reaper config %s: keeping the last good policies: %s",
                    self.path,
                    "; ".join(exc.problems),
                )
                return None
            change = describe_change(self._policy, policy)
            self._policy, self._fingerprint, self._rejected = policy, stamp, None
            log.info("%s (%s)", change, self.path)
            return change

    def watch(self, stop: threading.Event, period: float = RECHECK_SECONDS) -> None:
        """Look at the file every ``period`` seconds until ``stop`` is set (a thread's job)."""
        while not stop.wait(period):
            try:
                self.reload()
            except Exception:  # the last good policy stays; the next look tries again
                log.exception("reaper config %s: looking at the file failed", self.path)
