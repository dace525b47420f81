"""The accounts one exporter watches, and the named keys it attributes sessions to.

Without ``--config.file`` the exporter watches one account, given by ``--notte.api-url`` and
its key, and its series carry neither an ``account`` nor a ``key`` label. With it, the file
names every account (``name`` becomes the value of the ``account`` label) and, per account,
the named keys whose sessions are told apart (``key`` label; sessions no named key claims
are ``key="other"``). A key's *name* may appear anywhere; its value never does: every key
is an ``ApiKey`` sharing the process's one ``Secrets``, so the one redaction step removes
them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from notte_exporter.keys import ApiKey

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
