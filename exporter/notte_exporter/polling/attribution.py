"""Which named key each session of one account belongs to, asking the API only when needed.

A poll reads the account-wide listing (the account key) as before. The sessions in it the
tracker has never seen are *deferred* (``lifecycle.LiveListing``); once the listing is whole,
``claim`` lists the live sessions of each named key (``GET /sessions?only_active=true&
only_current_token=true``, paged, with that key's own client, within the poll's deadline)
and gives each deferred session the first named key, in the order of the configuration,
whose listing holds it; a session no named key holds is ``OTHER_KEY``. Then the poll counts
the deferred sessions under those keys, so a session's every count, its start included,
carries the key it was attributed to. A session keeps its key for life, with one exception
below, so the sums over keys are always the account's totals.

A session that began and ended between two polls is never in a live listing: the poll meets
it ended, in the history scan (``LifecycleTracker.first_seen_ended``), and holds it until
``claim_ended`` has listed the *recent history* of each named key (``GET /sessions?
only_active=false&only_current_token=true``, newest first, only the pages back to the oldest
held session's creation, at most ``max_pages``, within the poll's deadline); then it counts
its start and end under the key found, ``OTHER_KEY`` when none. Nothing waits for a key
here: an ended session is counted once, at once.

Invariants:

- Skip rule: no deferred session and no session waiting for a failed key means no request
  at all (every key is listed once at the first poll, before the account: ``list_unlisted``).
  Otherwise each needed key is listed once (as many pages as it has, at most
  ``max_pages``). Likewise, no session first seen ended means no
  history listing; otherwise each named key's history is listed once, in the order of the
  configuration, but a key is not asked when the keys before it claimed every held session.
- A history listing is partial by design: stopping at its page cap, or before the pages a
  newest-first listing could hold the held sessions in, is not a failure, and what it did
  not find is ``OTHER_KEY``. Nothing relies on the order for the sums: a listing in another
  order finds less, never counts more.
- A named key whose listing fails (401 for a revoked key, a timeout, 5xx after retries, a
  listing past ``max_pages``) never fails the poll: ``notte_key_up`` says 0, one log line says
  so (repeats are reminded at most every ``REMINDER_SECONDS``), and the sessions it might
  have claimed are ``OTHER_KEY``. They *wait* for it: while any of them is live the key is
  listed at every poll, and once it works again the live ones it holds move to it; what was
  counted stays under ``OTHER_KEY``, what follows counts under the key.
- Only ids are kept, and only the ids asked about (the deferred, the waiting and the held
  ended ones): what a key listing holds, however large or strange (another key's sessions,
  ids that are not live), bounds neither memory nor counts; at worst it misattributes a
  session.
- A key's value never reaches a log line or a label: keys are told apart by their names,
  and every text of an error passes the one redaction step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from notte_exporter.accounts import OTHER_KEY
from notte_exporter.api.client import Answer, NotteClient
from notte_exporter.api.models import LiveSession, SessionPage
from notte_exporter.api.paging import read_listing
from notte_exporter.errors import ApiError
from notte_exporter.polling.poll_log import REMINDER_SECONDS

log = logging.getLogger(__name__)

KEY_UP = "notte_key_up"


@dataclass(frozen=True)
class Claims:
    """What one ``claim`` learned: the key of each deferred session a named key holds (the
    others are ``OTHER_KEY``), and the waiting sessions that move to a key that works again."""

    new: dict[str, str] = field(default_factory=dict)
    moved: dict[str, str] = field(default_factory=dict)


@dataclass
class _KeyState:
    up: bool = True
    listed: bool = False
    # The failure last logged (reason, HTTP status), and when: repeats are only reminded.
    failure: tuple[str, int | None] | None = None
    logged_at: float = 0.0
    unlogged: int = 0


class Attribution:
    """The named keys of one account, their listings, and the sessions waiting for a key."""

    def __init__(
        self,
        clients: Mapping[str, NotteClient],
        registry: CollectorRegistry,
        *,
        redact: Callable[[str], str] = str,
        monotonic: Callable[[], float] = time.monotonic,
        reminder_every: float = REMINDER_SECONDS,
    ) -> None:
        # In the order of the configuration: the first key that holds a session claims it.
        self._clients = dict(clients)
        self._keys = {name: _KeyState() for name in self._clients}
        self._redact = redact
        self._monotonic = monotonic
        self._reminder_every = reminder_every
        # Live sessions attributed to OTHER_KEY while keys failed, by id: the keys that may
        # still claim them.
        self._waiting: dict[str, frozenset[str]] = {}
        registry.register(KeyCollector(self.key_status))

    @property
    def names(self) -> tuple[str, ...]:
        """The named keys, in the order of the configuration."""
        return tuple(self._clients)

    def key_status(self) -> dict[str, bool | None]:
        """Each named key's last listing: worked, failed, or None before its first."""
        return {name: state.up if state.listed else None for name, state in self._keys.items()}

    def requests_per_poll(self) -> int:
        """Requests a poll with something new expects to make for the keys: one page each."""
        return len(self._clients)

    @property
    def requests_made(self) -> int:
        """Requests the named keys' clients sent since start."""
        return sum(client.requests_made for client in self._clients.values())

    def waiting(self) -> int:
        """Live sessions attributed to ``OTHER_KEY`` that a failed key may still claim."""
        return len(self._waiting)

    def list_unlisted(self, deadline: float, *, page_size: int, max_pages: int) -> dict[str, str]:
        """The live sessions of each named key never listed yet (all of them at the first
        poll), by id: asked before the account's listing, so that the sessions they hold
        are attributed as the listing reads them rather than held until it is whole (the
        first listing holds nothing but new sessions). Never raises an ApiError."""
        keys: dict[str, str] = {}
        for name, state in self._keys.items():
            if state.listed:
                continue
            try:
                found = self._list(name, None, deadline, page_size, max_pages)
            except ApiError as exc:
                self._failed(name, exc)
            else:
                self._worked(name)
                for sid in found:
                    keys.setdefault(sid, name)
        return keys

    def claim(
        self,
        new: Collection[str],
        live: Callable[[str], bool],
        deadline: float,
        *,
        page_size: int,
        max_pages: int,
    ) -> Claims:
        """The keys of the ``new`` sessions (deferred by this poll's listing), and the
        sessions that move to a key that works again; ``live`` says which sessions this
        poll's listing showed live. Never raises an ApiError: a key that fails is down."""
        self._waiting = {sid: keys for sid, keys in self._waiting.items() if live(sid)}
        needed = [
            name
            for name, state in self._keys.items()
            if new or any(name in keys for keys in self._waiting.values())
        ]
        if not needed:
            return Claims()
        found: dict[str, set[str]] = {}
        asked = set(new)
        for name in needed:
            wanted = asked | {sid for sid, keys in self._waiting.items() if name in keys}
            try:
                found[name] = self._list(name, wanted, deadline, page_size, max_pages)
            except ApiError as exc:
                self._failed(name, exc)
            else:
                self._worked(name)
        failed = frozenset(name for name in needed if name not in found)
        claims = Claims()
        for sid in new:
            owner = next((name for name in self._clients if sid in found.get(name, ())), None)
            if owner is not None:
                claims.new[sid] = owner
            elif failed:
                self._waiting[sid] = failed
        for sid, keys in list(self._waiting.items()):
            if sid in claims.new or sid in new:
                continue
            owner = next((name for name in self._clients if sid in found.get(name, ())), None)
            if owner is not None:
                claims.moved[sid] = owner
                del self._waiting[sid]
                continue
            still = keys - found.keys()
            if still:
                self._waiting[sid] = still
            else:
                del self._waiting[sid]
        return claims

    def claim_ended(
        self,
        ended: Mapping[str, datetime],
        deadline: float,
        *,
        page_size: int,
        max_pages: int,
    ) -> dict[str, str]:
        """The named key of each session first seen ended (by id, with when it was created)
        that a key's recent history holds; the others are ``OTHER_KEY``. Never raises an
        ApiError: a key that fails is down, and the sessions it might have claimed are
        ``OTHER_KEY``."""
        claims: dict[str, str] = {}
        if not ended:
            return claims
        oldest = min(ended.values())
        for name in self._clients:
            wanted = {sid for sid in ended if sid not in claims}
            if not wanted:
                break
            try:
                found = self._history(name, wanted, oldest, deadline, page_size, max_pages)
            except ApiError as exc:
                self._failed(name, exc)
                continue
            self._worked(name)
            claims.update(dict.fromkeys(found, name))
        return claims

    def _history(
        self,
        name: str,
        wanted: set[str],
        oldest: datetime,
        deadline: float,
        page_size: int,
        max_pages: int,
    ) -> set[str]:
        """The ids among ``wanted`` in key ``name``'s history, read newest first while its
        pages may still hold them: not past a page with a session created before ``oldest``,
        nor once every wanted id is found, nor past ``max_pages``."""
        client = self._clients[name]
        found: set[str] = set()
        for page in range(1, max_pages + 1):
            answer = client.fetch_sessions(
                page=page,
                page_size=page_size,
                only_active=False,
                only_current_token=True,
                deadline=deadline,
            )
            result = client.read_sessions(answer, page, page_size)
            older = False
            for item in result.sessions:
                if item["session_id"] in wanted:
                    found.add(item["session_id"])
                older = older or item["created_at"] < oldest
            if older or found == wanted or not result.has_next or result.is_empty:
                break
        return found

    def _list(
        self, name: str, wanted: set[str] | None, deadline: float, page_size: int, max_pages: int
    ) -> set[str]:
        """The ids among ``wanted`` (None: all) that key ``name``'s live listing holds."""
        client = self._clients[name]
        found: set[str] = set()

        def fetch(page: int) -> Answer:
            return client.fetch_sessions(
                page=page,
                page_size=page_size,
                only_active=True,
                only_current_token=True,
                deadline=deadline,
            )

        def read(answer: Answer, page: int) -> SessionPage[LiveSession]:
            return client.read_live_sessions(answer, page, page_size)

        def keep(page: SessionPage[LiveSession]) -> None:
            found.update(
                s["session_id"]
                for s in page.sessions
                if wanted is None or s["session_id"] in wanted
            )

        read_listing(
            fetch,
            read,
            keep,
            pool=None,
            window=1,
            expected=1,
            max_pages=max_pages,
            page_size=page_size,
        )
        return found

    def _worked(self, name: str) -> None:
        state = self._keys[name]
        if state.failure is not None:
            log.info("named key %s lists its sessions again", name, extra={"fields": {"key": name}})
        state.up, state.listed, state.failure, state.unlogged = True, True, None, 0

    def _failed(self, name: str, error: ApiError) -> None:
        state = self._keys[name]
        state.up, state.listed = False, True
        now = self._monotonic()
        failure = (error.reason.value, error.status)
        # Not the error's own advice, which is about the account key.
        text = self._redact(f"{error.reason.value}: {error.message}")
        fields = {"key": name, "reason": error.reason.value}
        if failure != state.failure:
            state.failure, state.logged_at, state.unlogged = failure, now, 0
            log.warning(
                "named key %s could not list its sessions, which count as key=%s until it "
                "works again (check its key_file in --config.file): %s",
                name,
                OTHER_KEY,
                text,
                extra={"fields": fields},
            )
        elif now - state.logged_at >= self._reminder_every:
            repeats, state.logged_at, state.unlogged = state.unlogged + 1, now, 0
            log.warning(
                "named key %s still cannot list its sessions (%d more since the last line): %s",
                name,
                repeats,
                text,
                extra={"fields": {**fields, "repeated": repeats}},
            )
        else:
            state.unlogged += 1
            log.debug("named key %s failed again: %s", name, text, extra={"fields": fields})


class KeyCollector(Collector):
    """``notte_key_up``: one series per named key, none for ``OTHER_KEY``::

    # HELP notte_key_up Whether the named key's last listing of its sessions worked ...
    # TYPE notte_key_up gauge
    notte_key_up{key="crawler"} 1.0
    """

    def __init__(self, key_status: Callable[[], Mapping[str, bool | None]]) -> None:
        self._key_status = key_status

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(KEY_UP, "")]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            KEY_UP,
            "Whether the named key's last listing of its sessions worked (1) or failed (0); "
            'while it fails, its new sessions count as key="other".',
            labels=["key"],
        )
        for name, up in self._key_status().items():
            # Up until a listing fails: before its first, a key is not known to be down.
            family.add_metric([name], 0.0 if up is False else 1.0)
        if family.samples:
            yield family
