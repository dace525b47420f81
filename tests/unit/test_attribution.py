"""Attribution of one account's sessions to its named keys, over loopback against the simulator.

Each test builds one account's pipeline as a keyed account is wired (its client, tracker,
poller and collectors in a registry of its own, one client per named key), shares a manual
clock with the simulated account, and checks the keyed series against the simulator's truth
per key, and the requests the keys cost.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.samples import Sample
from pydantic import SecretStr

from notte_exporter.accounts import OTHER_KEY
from notte_exporter.api.client import NotteClient
from notte_exporter.instrumentation import ExporterMetrics
from notte_exporter.keys import ApiKey
from notte_exporter.labels import BROWSER_TYPES, BoundedLabel
from notte_exporter.metrics.sessions import SessionCollector
from notte_exporter.polling.attribution import Attribution
from notte_exporter.polling.lifecycle import LifecycleMetrics, LifecycleTracker
from notte_exporter.polling.poller import PollConfig, Poller
from notte_exporter.polling.state import ExporterState, PollStatus
from notte_exporter.redaction import Secrets
from notte_exporter.simulator import (
    Fault,
    FaultQueue,
    KeyTruth,
    ManualClock,
    RecordedRequest,
    SimulatedAccount,
    SimulatorServer,
)

ACCOUNT_KEY = "sk-account-5d1e7a0c9b"
KEYED_FAMILIES = (
    "notte_sessions_started_total",
    "notte_sessions_closed_total",
    "notte_network_request_bytes_total",
    "notte_network_response_bytes_total",
    "notte_sessions_browser_seconds_total",
    "notte_sessions_idle_seconds_total",
    "notte_sessions_active",
)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Reading:
    """Samples of one collection, by name."""

    def __init__(self, samples: list[Sample]) -> None:
        self._by_name: dict[str, list[Sample]] = {}
        for sample in samples:
            self._by_name.setdefault(sample.name, []).append(sample)

    def value(self, name: str, **labels: str) -> float:
        return sum(
            sample.value
            for sample in self._by_name.get(name, ())
            if labels.items() <= sample.labels.items()
        )


@dataclass
class Pipeline:
    """One keyed account's poll, as the daemon wires it for an account of --config.file."""

    registry: CollectorRegistry
    poller: Poller
    state: ExporterState
    attribution: Attribution | None
    clients: list[NotteClient]

    def poll(self) -> PollStatus:
        return self.poller.poll()

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        return self.read().value(name, **labels)

    def read(self) -> Reading:
        """Every sample as a scrape would see it now."""
        return Reading([sample for family in self.registry.collect() for sample in family.samples])

    def keys_of(self, name: str) -> set[str]:
        return {
            sample.labels["key"]
            for family in self.registry.collect()
            for sample in family.samples
            if sample.name == name
        }


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


MADE: list[Pipeline] = []


@pytest.fixture(autouse=True)
def _close_pipelines() -> Iterator[None]:
    yield
    while MADE:
        made = MADE.pop()
        made.poller.close()
        for client in made.clients:
            client.close()


@pytest.fixture
def account(clock: ManualClock) -> SimulatedAccount:
    return SimulatedAccount(clock=clock, profile=None)


@pytest.fixture
def api(account: SimulatedAccount) -> Iterator[SimulatorServer]:
    with SimulatorServer(
        account, api_key=ACCOUNT_KEY, rate_limit=None, stop_poll_interval=0.005
    ) as server:
        yield server


def pipeline(
    api: SimulatorServer,
    clock: ManualClock,
    keys: dict[str, ApiKey],
    *,
    attribution: bool = True,
    max_pages: int = 50,
    page_size: int = 100,
    poll_timeout: float = 24.0,
    lookup_budget: int = 10,
    secrets: Secrets | None = None,
) -> Pipeline:
    secrets = secrets if secrets is not None else Secrets()
    registry = CollectorRegistry(auto_describe=True)
    metrics = ExporterMetrics(registry)
    sleeps = Sleeps()
    clients: list[NotteClient] = []

    def client(key: ApiKey) -> NotteClient:
        clients.append(
            NotteClient(
                api.url,
                key,
                metrics,
                max_response_bytes=8 << 20,
                timeout=5.0,
                retries=2,
                sleep=sleeps,
                wall_clock=lambda: clock.now().timestamp(),
            )
        )
        return clients[-1]

    browser_label = BoundedLabel(BROWSER_TYPES, redact=secrets.redact)
    status_label = BoundedLabel(("active",), redact=secrets.redact)
    tracker = LifecycleTracker(
        LifecycleMetrics(registry, BROWSER_TYPES, keyed=True),
        browser_label,
        watch_start=clock.now(),
    )
    attributed = (
        Attribution({name: client(key) for name, key in keys.items()}, registry)
        if attribution
        else None
    )
    state = ExporterState()
    poller = Poller(
        client(ApiKey(SecretStr(ACCOUNT_KEY), secrets=secrets)),
        PollConfig(
            page_size=page_size,
            max_pages=max_pages,
            concurrency=1,
            poll_timeout=poll_timeout,
            lookup_budget=lookup_budget,
            idle_threshold=timedelta(seconds=60),
        ),
        state,
        tracker,
        metrics,
        browser_label,
        status_label,
        clock=clock.now,
        redact=secrets.redact,
        attribution=attributed,
    )
    registry.register(
        SessionCollector(
            state, browser_label.values, lambda: metrics.rate_limit, tracker.stats, keyed=True
        )
    )
    MADE.append(Pipeline(registry, poller, state, attributed, clients))
    return MADE[-1]


def named_keys(account: SimulatedAccount, *names: str, secrets: Secrets) -> dict[str, ApiKey]:
    return {name: ApiKey(SecretStr(account.issue_key(name)), secrets=secrets) for name in names}


def key_listings(api: SimulatorServer) -> list[RecordedRequest]:
    return [r for r in api.requests if r.query.get("only_current_token") == "true"]


def truths_of(account: SimulatedAccount, names: tuple[str, ...]) -> dict[str, KeyTruth]:
    """What each named key's sessions did, and the account key's own as ``OTHER_KEY``."""
    truths = {name: account.truth(name) for name in names}
    truths[OTHER_KEY] = account.truth()  # the account key's sessions: no named key holds them
    return truths


def assert_matches_truth(
    account: SimulatedAccount, exporter: Pipeline, names: tuple[str, ...]
) -> None:
    """Per key and summed, every keyed series equals what the account's keys really did."""
    truths = truths_of(account, names)
    reading = exporter.read()
    value = reading.value
    for key, truth in truths.items():
        assert value("notte_sessions_started_total", key=key) == truth.starts, key
        for (status, reason), count in truth.ends.items():
            closed = value(
                "notte_sessions_closed_total", key=key, status=status, close_reason=reason
            )
            assert closed == count, (key, status, reason)
        assert value("notte_sessions_closed_total", key=key) == sum(truth.ends.values()), key
        assert value("notte_network_request_bytes_total", key=key) == truth.request_bytes, key
        assert value("notte_network_response_bytes_total", key=key) == truth.response_bytes, key
        assert value("notte_sessions_browser_seconds_total", key=key) == pytest.approx(
            truth.browser_seconds
        ), key
        for reason, seconds in truth.idle_seconds.items():
            idle = value("notte_sessions_idle_seconds_total", key=key, close_reason=reason)
            assert idle == pytest.approx(seconds), (key, reason)
        assert value("notte_sessions_active", key=key) == truth.live, key
    assert_sums(reading, truths)


def assert_sums_are_the_account_totals(
    account: SimulatedAccount, exporter: Pipeline, names: tuple[str, ...]
) -> None:
    assert_sums(exporter.read(), truths_of(account, names))


def assert_sums(reading: Reading, truths: dict[str, KeyTruth]) -> None:
    """Summed over key, the keyed series are the account's totals, whoever got what."""
    value = reading.value
    every = truths.values()
    assert value("notte_sessions_started_total") == sum(t.starts for t in every)
    assert value("notte_sessions_closed_total") == sum(sum(t.ends.values()) for t in every)
    assert value("notte_network_request_bytes_total") == sum(t.request_bytes for t in every)
    assert value("notte_network_response_bytes_total") == sum(t.response_bytes for t in every)
    assert value("notte_sessions_browser_seconds_total") == pytest.approx(
        sum(t.browser_seconds for t in every)
    )
    assert value("notte_sessions_active") == sum(t.live for t in every)


class TransientFaults(FaultQueue):
    """Fails ``share`` of the requests (seeded), each once: the retry that follows succeeds,
    so every poll and every key listing ends whole, later. ``spared`` says, as a request
    arrives, that it must not fail."""

    def __init__(
        self, share: float, seed: int = 22, *, spared: Callable[[], bool] = lambda: False
    ) -> None:
        super().__init__()
        self._share = share
        self._rng = random.Random(seed)
        self._spared = spared
        self._failed_last = False
        self.failed = 0
        self.served = 0

    def take(self, path: str, key: str | None = None) -> Fault | None:
        queued = super().take(path, key)
        if queued is not None:
            return queued
        self.served += 1
        if self._failed_last or self._spared() or self._rng.random() >= self._share:
            self._failed_last = False
            return None
        self._failed_last = True
        self.failed += 1
        return self._rng.choice((Fault.status(503), Fault.status(500), Fault.reset()))


def scanning_the_accounts_history(api: SimulatorServer) -> Callable[[], bool]:
    """Whether the request arriving is the account's own history scan, which is best effort
    (never retried): one failed costs the sessions that began and ended since the previous
    poll a poll's delay, not their key (``test_a_short_session_a_failed_history_scan_...``)."""

    def spared() -> bool:
        query = api.requests[-1].query  # recorded before its fault is taken
        return query.get("only_active") == "false" and query.get("only_current_token") != "true"

    return spared


def short_session(
    account: SimulatedAccount, clock: ManualClock, rng: random.Random, key: str | None
) -> float:
    """A session of ``key`` that begins and ends within seconds, before the next poll;
    returns the seconds it took."""
    sid = account.start_session(
        key=key, browser_type=rng.choice(BROWSER_TYPES), proxies=rng.random() < 0.3
    )
    lived = float(rng.randint(1, 5))
    clock.advance(lived / 2)
    account.access(sid, rng.randint(1, 5_000), rng.randint(1, 50_000))
    clock.advance(lived / 2)
    if rng.random() < 0.8:
        account.stop(sid)
    else:
        account.fail(sid)
    return lived


@pytest.mark.slow  # a second of CPU or more: the full tier (tests/tiers.py)
def test_attribution_is_exact_after_every_poll_of_a_churning_account_under_faults(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    secrets = Secrets()
    names = ("checkout", "crawler", "reports")
    exporter = pipeline(api, clock, named_keys(account, *names, secrets=secrets), secrets=secrets)
    faults = api.faults = TransientFaults(0.2, spared=scanning_the_accounts_history(api))
    rng = random.Random(7)
    owners: tuple[str | None, ...] = (*names, None)
    live: dict[str, bool] = {}  # id -> abandoned (left to its idle timeout)
    short: Counter[str | None] = Counter()
    for _ in range(30):
        for sid in [s for s in live if s not in account.session_ids()]:
            del live[sid]
        ending = 0
        for sid, abandoned in list(live.items()):
            if abandoned:
                continue
            draw = rng.random()
            if draw < 0.15 and ending < 3:
                account.stop(sid)
                ending += 1
                del live[sid]
            elif draw < 0.2 and ending < 3:
                account.fail(sid)
                ending += 1
                del live[sid]
            else:
                account.access(sid, rng.randint(1, 5_000), rng.randint(1, 50_000))
        for _ in range(rng.randint(0, 3)):
            sid = account.start_session(
                key=rng.choice(owners),
                browser_type=rng.choice(BROWSER_TYPES),
                proxies=rng.random() < 0.3,
            )
            live[sid] = rng.random() < 0.25
        # Sessions shorter than the poll interval: never listed live, met ended.
        elapsed = 0.0
        for owner in owners:
            if rng.random() < 0.4:
                elapsed += short_session(account, clock, rng, owner)
                short[owner] += 1
        clock.advance(30 - elapsed)
        assert exporter.poll().ok
        assert_matches_truth(account, exporter, names)
    assert faults.failed >= 0.15 * faults.served
    assert sum(account.truth(name).starts for name in names) > 20
    assert all(short[owner] >= 5 for owner in owners), short
    assert sum(account.truth(n).ends[("timed_out", "idle_timeout")] for n in names) > 0


def test_a_revoked_key_is_down_its_new_sessions_are_other_and_move_back_when_it_works(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    secrets = Secrets()
    names = ("checkout", "crawler")
    exporter = pipeline(api, clock, named_keys(account, *names, secrets=secrets), secrets=secrets)
    account.start_session(key="crawler")
    account.start_session(key="checkout")
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_key_up", key="crawler") == 1

    account.revoke_key("crawler")
    later = account.start_session(key="crawler")
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_key_up", key="crawler") == 0
    assert exporter.value("notte_key_up", key="checkout") == 1
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 1
    assert exporter.value("notte_sessions_active", key="crawler") == 1
    assert exporter.value("notte_sessions_active", key=OTHER_KEY) == 1
    assert_sums_are_the_account_totals(account, exporter, names)

    account.reinstate_key("crawler")
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_key_up", key="crawler") == 1
    assert exporter.value("notte_sessions_active", key="crawler") == 2
    assert exporter.value("notte_sessions_active", key=OTHER_KEY) == 0
    # What was counted stays, up to the poll that moved it: its start, its first minute.
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 1
    assert exporter.value("notte_sessions_browser_seconds_total", key=OTHER_KEY) == 60
    account.access(later, request_bytes=700)
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_network_request_bytes_total", key="crawler") == 700
    assert exporter.value("notte_sessions_browser_seconds_total", key=OTHER_KEY) == 60
    assert_sums_are_the_account_totals(account, exporter, names)


def test_a_rotated_key_file_is_read_again_and_its_sessions_move_to_it(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock, tmp_path: Path
) -> None:
    secrets = Secrets()
    key_file = tmp_path / "crawler"
    key_file.write_text(account.issue_key("crawler") + "\n")
    keys = {"crawler": ApiKey(path=key_file, secrets=secrets)}
    exporter = pipeline(api, clock, keys, secrets=secrets)
    account.start_session(key="crawler")
    clock.advance(30)
    assert exporter.poll().ok

    new_value = account.rotate_key("crawler")
    account.start_session(key="crawler")
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_key_up", key="crawler") == 0
    assert exporter.value("notte_sessions_active", key=OTHER_KEY) == 1

    key_file.write_text(new_value + "\n")
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_key_up", key="crawler") == 1
    assert exporter.value("notte_sessions_active", key="crawler") == 2
    assert exporter.value("notte_sessions_started_total", key="crawler") == 1
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 1
    assert_sums_are_the_account_totals(account, exporter, ("crawler",))


def test_a_session_whose_key_listing_fails_when_it_first_appears_is_other_until_it_works(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    secrets = Secrets()
    exporter = pipeline(api, clock, named_keys(account, "crawler", secrets=secrets))
    assert exporter.poll().ok  # the key listed at start: the next poll's is the one
    api.clear_requests()
    api.faults.push(Fault.status(503, times=3).for_key("crawler"))  # the retries too
    account.start_session(key="crawler")
    clock.advance(30)
    status = exporter.poll()
    assert status.ok
    assert exporter.value("notte_key_up", key="crawler") == 0
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 1
    assert exporter.value("notte_sessions_active", key=OTHER_KEY) == 1

    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_key_up", key="crawler") == 1
    assert exporter.value("notte_sessions_active", key="crawler") == 1
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 1
    assert exporter.value("notte_sessions_started_total", key="crawler") == 0
    assert_sums_are_the_account_totals(account, exporter, ("crawler",))


def test_a_poll_without_new_sessions_makes_no_key_listing(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(api, clock, named_keys(account, "a", "b", "c", secrets=Secrets()))
    session = account.start_session(key="a")
    clock.advance(30)
    assert exporter.poll().ok
    api.clear_requests()
    account.access(session, request_bytes=1)
    clock.advance(30)
    status = exporter.poll()
    assert status.ok
    assert key_listings(api) == []
    assert status.requests == len(api.requests)


def test_a_poll_with_new_sessions_lists_each_named_key_once_over_its_pages(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(
        api, clock, named_keys(account, "a", "b", "c", secrets=Secrets()), page_size=10
    )
    assert exporter.poll().ok  # every key is listed once at the start, new sessions or not
    api.clear_requests()
    for _ in range(15):
        account.start_session(key="a")
    account.start_session(key="b")
    clock.advance(30)
    status = exporter.poll()
    assert status.ok
    listed = [(r.key, r.query["page"]) for r in key_listings(api)]
    assert listed == [("a", "1"), ("a", "2"), ("b", "1"), ("c", "1")]
    assert status.requests == len(api.requests)
    assert exporter.value("notte_sessions_active", key="a") == 15


def test_a_poll_counts_the_key_listings_in_the_requests_it_leaves_room_for(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    # The first poll: the account's listing and each key's, 4 requests of a window of 6
    # that stands still on the manual clock, so 2 are left.
    api.rate_limit = 6
    exporter = pipeline(
        api, clock, named_keys(account, "a", "b", "c", secrets=Secrets()), lookup_budget=0
    )
    assert exporter.poll().ok
    account.start_session(key="a")
    clock.advance(30)
    exporter.poll()  # a page and three key listings do not fit in 2: paced
    assert exporter.value("notte_exporter_throttled_polls_total") == 1


def test_a_failing_key_is_listed_again_only_while_other_sessions_wait_for_it(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(api, clock, named_keys(account, "a", "b", secrets=Secrets()))
    assert exporter.poll().ok
    account.revoke_key("a")
    waiting = account.start_session(key="a")
    clock.advance(30)
    assert exporter.poll().ok
    api.clear_requests()
    clock.advance(30)
    assert exporter.poll().ok
    assert [r.key for r in key_listings(api)] == [None]  # a's value is refused: no name
    assert len(key_listings(api)) == 1  # a only, not b
    account.stop(waiting)
    clock.advance(30)
    api.clear_requests()
    assert exporter.poll().ok
    assert key_listings(api) == []
    assert exporter.value("notte_key_up", key="a") == 0


@pytest.mark.parametrize("with_attribution", [False, True])
def test_an_account_without_named_keys_counts_every_session_as_other_and_asks_no_more(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock, with_attribution: bool
) -> None:
    exporter = pipeline(api, clock, {}, attribution=with_attribution)
    account.start_session()
    stopped_at_once(account, clock, None)
    clock.advance(30)
    assert exporter.poll().ok
    for name in KEYED_FAMILIES:
        assert exporter.keys_of(name) == {OTHER_KEY}, name
    assert exporter.value("notte_sessions_active", key=OTHER_KEY) == 1
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 2
    assert key_listings(api) == []
    assert len(api.requests) == 2  # the live listing and the history, as in single mode
    assert "notte_key_up" not in generate_latest(exporter.registry).decode()


def listing_page(ids: list[str], *, has_next: bool) -> dict[str, object]:
    items = [
        {
            "session_id": sid,
            "idle_timeout_minutes": 3,
            "max_duration_minutes": 15,
            "created_at": "2026-05-01T10:00:00Z",
            "last_accessed_at": "2026-05-01T10:00:00Z",
            "closed_at": None,
            "status": "active",
            "browser_type": "chromium",
            "network_request_bytes": 0,
            "network_response_bytes": 0,
        }
        for sid in ids
    ]
    return {"items": items, "page": 1, "page_size": 100, "has_next": has_next}


def test_a_key_listing_that_never_ends_is_cut_at_max_pages_and_counts_stay_whole(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(api, clock, named_keys(account, "crawler", secrets=Secrets()), max_pages=5)
    assert exporter.poll().ok  # the key listed at start: the next poll's is the one
    api.clear_requests()
    endless = listing_page([f"stranger-{n}" for n in range(100)], has_next=True)
    api.faults.push(Fault.payload(endless, times=1000).for_key("crawler"))
    account.start_session(key="crawler")
    account.start_session()
    clock.advance(30)
    assert exporter.poll().ok
    assert len(key_listings(api)) == 5
    assert exporter.value("notte_key_up", key="crawler") == 0
    assert exporter.value("notte_sessions_active", key=OTHER_KEY) == 2
    assert_sums_are_the_account_totals(account, exporter, ("crawler",))


def test_a_key_listing_that_hangs_is_cut_at_the_polls_deadline(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(
        api, clock, named_keys(account, "crawler", secrets=Secrets()), poll_timeout=0.3
    )
    assert exporter.poll().ok  # the key listed at start: the next poll's is the one
    api.clear_requests()
    api.faults.push(Fault.hang().for_key("crawler"))
    account.start_session(key="crawler")
    clock.advance(30)
    status = exporter.poll()
    assert status.ok
    assert status.duration_seconds < 0.3 + 0.2
    assert exporter.value("notte_key_up", key="crawler") == 0
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 1
    assert_sums_are_the_account_totals(account, exporter, ("crawler",))


def test_a_key_listing_claiming_another_keys_session_moves_it_but_counts_it_once(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(api, clock, named_keys(account, "crawler", "checkout", secrets=Secrets()))
    theirs = account.start_session(key="checkout")
    mine = account.start_session(key="crawler")
    api.faults.push(Fault.payload(listing_page([mine, theirs], has_next=False)).for_key("crawler"))
    clock.advance(30)
    assert exporter.poll().ok
    # The first key in the configuration that claims a session gets it: attribution only.
    assert exporter.value("notte_sessions_active", key="crawler") == 2
    assert exporter.value("notte_sessions_active", key="checkout") == 0
    assert exporter.value("notte_sessions_started_total") == 2
    assert_sums_are_the_account_totals(account, exporter, ("crawler", "checkout"))


def test_a_keys_value_reaches_no_log_line_and_no_series(
    api: SimulatorServer,
    account: SimulatedAccount,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = Secrets()
    keys = named_keys(account, "crawler", secrets=secrets)
    value = keys["crawler"]()
    exporter = pipeline(api, clock, keys, secrets=secrets)
    echo = {"message": f"key {value} is revoked", "detail": value}
    api.faults.push(Fault.status(401, echo, times=2).for_key("crawler"))
    account.start_session(key="crawler", browser_type=value, user_agent=value)
    clock.advance(30)
    with caplog.at_level(logging.DEBUG):
        assert exporter.poll().ok
        clock.advance(30)
        assert exporter.poll().ok
    assert "named key crawler could not list its sessions" in caplog.text
    assert value not in caplog.text
    assert value not in generate_latest(exporter.registry).decode()


def test_the_first_poll_attributes_the_sessions_already_running_and_counts_no_old_traffic(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    crawler = ApiKey(SecretStr(account.issue_key("crawler")))
    before = account.start_session(key="crawler", network_request_bytes=5_000)
    mine = account.start_session(network_request_bytes=7)
    clock.advance(60)
    exporter = pipeline(api, clock, {"crawler": crawler})
    account.access(before, request_bytes=100)
    account.access(mine, request_bytes=1)
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_sessions_active", key="crawler") == 1
    assert exporter.value("notte_sessions_active", key=OTHER_KEY) == 1
    # Running before the exporter started: no start, no old bytes, under the right key.
    assert exporter.value("notte_sessions_started_total") == 0
    assert exporter.value("notte_network_request_bytes_total") == 0
    account.access(before, request_bytes=40)
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_network_request_bytes_total", key="crawler") == 40
    assert exporter.value("notte_sessions_browser_seconds_total", key="crawler") == 60


def test_the_first_poll_lists_the_named_keys_before_the_account_so_it_holds_no_session(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    keys = named_keys(account, "a", "b", secrets=Secrets())
    for key in ("a", "a", "b"):
        account.start_session(key=key)
    clock.advance(30)
    exporter = pipeline(api, clock, keys, lookup_budget=0)
    assert exporter.poll().ok
    # Each key once, then the account's listing, and no key again: nothing was held for it.
    listed = [(r.key, r.query.get("only_active")) for r in api.requests]
    assert listed == [("a", "true"), ("b", "true"), (None, "true")]
    assert exporter.value("notte_sessions_active", key="a") == 2
    assert exporter.value("notte_sessions_active", key="b") == 1


def test_a_key_that_hangs_at_the_first_poll_leaves_the_accounts_listing_half_the_budget(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(
        api, clock, named_keys(account, "crawler", secrets=Secrets()), poll_timeout=0.4
    )
    api.faults.push(Fault.hang().for_key("crawler"))
    account.start_session(key="crawler")
    clock.advance(30)
    status = exporter.poll()
    assert status.ok
    assert status.duration_seconds < 0.4 + 0.2
    # Held, then claimed by the key's second listing, which worked.
    assert exporter.value("notte_sessions_started_total", key="crawler") == 1
    assert_sums_are_the_account_totals(account, exporter, ("crawler",))


def test_keyed_series_carry_key_after_their_own_labels(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(api, clock, named_keys(account, "crawler", secrets=Secrets()))
    account.start_session(key="crawler")
    clock.advance(30)
    assert exporter.poll().ok
    labels = {
        sample.name: tuple(sample.labels)
        for family in exporter.registry.collect()
        for sample in family.samples
    }
    assert labels["notte_sessions_active"] == ("browser_type", "key")
    assert labels["notte_sessions_started_total"] == ("browser_type", "key")
    assert labels["notte_sessions_closed_total"] == (
        "browser_type",
        "status",
        "close_reason",
        "key",
    )
    assert labels["notte_network_request_bytes_total"] == ("browser_type", "proxy", "key")
    assert labels["notte_sessions_idle_seconds_total"] == ("browser_type", "close_reason", "key")
    assert labels["notte_session_duration_seconds_count"] == ("browser_type",)
    assert labels["notte_sessions_active_idle"] == ("browser_type",)
    assert labels["notte_key_up"] == ("key",)
    # Every key's label sets exist from the start, at 0.
    assert exporter.keys_of("notte_sessions_closed_total") == {"crawler", OTHER_KEY}


def history_listings(api: SimulatorServer) -> list[tuple[str | None, str]]:
    """The named keys' history listings: (key, page), in the order they were asked."""
    return [
        (r.key, r.query["page"]) for r in key_listings(api) if r.query["only_active"] == "false"
    ]


def stopped_at_once(account: SimulatedAccount, clock: ManualClock, key: str | None) -> str:
    """A session of ``key`` that lives 4 seconds, used, then stopped: between two polls."""
    sid = account.start_session(key=key)
    clock.advance(2)
    account.access(sid, request_bytes=300, response_bytes=4_000)
    clock.advance(2)
    account.stop(sid)
    return sid


def test_short_sessions_of_every_key_count_under_their_keys_for_one_history_listing_per_key(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    names = ("a", "b", "c")
    exporter = pipeline(api, clock, named_keys(account, *names, secrets=Secrets()))
    assert exporter.poll().ok  # every key's live sessions are listed once at the start
    api.clear_requests()
    for owner in (*names, None):
        stopped_at_once(account, clock, owner)
    clock.advance(30)
    status = exporter.poll()
    assert status.ok
    assert history_listings(api) == [("a", "1"), ("b", "1"), ("c", "1")]
    assert len(key_listings(api)) == 3  # no live listing of a key: nothing new was live
    assert status.requests == len(api.requests)
    for key in (*names, OTHER_KEY):
        assert exporter.value("notte_sessions_started_total", key=key) == 1, key
        assert exporter.value("notte_sessions_closed_total", key=key) == 1, key
        assert exporter.value("notte_network_request_bytes_total", key=key) == 300, key
        assert exporter.value("notte_sessions_browser_seconds_total", key=key) == 4, key
    assert_matches_truth(account, exporter, names)


def test_a_poll_whose_ended_sessions_were_all_seen_live_lists_no_keys_history(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(api, clock, named_keys(account, "a", "b", secrets=Secrets()))
    seen = [account.start_session(key="a"), account.start_session()]
    clock.advance(30)
    assert exporter.poll().ok
    api.clear_requests()
    for sid in seen:
        account.stop(sid)
    clock.advance(30)
    status = exporter.poll()
    assert status.ok
    assert key_listings(api) == []
    assert status.requests == len(api.requests) == 2  # the live listing and the history
    assert exporter.value("notte_sessions_closed_total", key="a") == 1
    assert exporter.value("notte_sessions_closed_total", key=OTHER_KEY) == 1


def test_a_key_is_not_asked_for_its_history_once_the_keys_before_it_claimed_every_short_session(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(api, clock, named_keys(account, "a", "b", "c", secrets=Secrets()))
    assert exporter.poll().ok
    api.clear_requests()
    stopped_at_once(account, clock, "a")
    clock.advance(30)
    assert exporter.poll().ok
    assert history_listings(api) == [("a", "1")]
    assert exporter.value("notte_sessions_started_total", key="a") == 1


def test_a_keys_history_is_read_back_to_the_oldest_short_session_only(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    keys = named_keys(account, "a", secrets=Secrets())
    for _ in range(25):  # a's old history: three pages, ended before the exporter started
        account.stop(account.start_session(key="a"))
    clock.advance(60)
    exporter = pipeline(api, clock, keys, page_size=10)
    assert exporter.poll().ok
    for _ in range(12):  # the newest page of a's history and two sessions of the next
        stopped_at_once(account, clock, "a")
    clock.advance(30)
    api.clear_requests()
    assert exporter.poll().ok
    assert history_listings(api) == [("a", "1"), ("a", "2")]
    assert exporter.value("notte_sessions_started_total", key="a") == 12
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 0


def test_a_revoked_keys_short_sessions_count_as_other_and_the_sums_stay_exact(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    names = ("checkout", "crawler")
    exporter = pipeline(api, clock, named_keys(account, *names, secrets=Secrets()))
    assert exporter.poll().ok
    account.revoke_key("crawler")
    stopped_at_once(account, clock, "crawler")
    stopped_at_once(account, clock, "checkout")
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_key_up", key="crawler") == 0
    assert exporter.value("notte_key_up", key="checkout") == 1
    assert exporter.value("notte_sessions_started_total", key="crawler") == 0
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 1
    assert exporter.value("notte_sessions_closed_total", key=OTHER_KEY) == 1
    assert exporter.value("notte_network_request_bytes_total", key=OTHER_KEY) == 300
    assert exporter.value("notte_sessions_started_total", key="checkout") == 1
    assert_sums_are_the_account_totals(account, exporter, names)


def test_a_key_whose_history_listing_fails_after_retries_is_down_and_its_short_sessions_other(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(api, clock, named_keys(account, "crawler", secrets=Secrets()))
    assert exporter.poll().ok
    api.faults.push(Fault.status(503, times=3).for_key("crawler"))  # the retries too
    stopped_at_once(account, clock, "crawler")
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_key_up", key="crawler") == 0
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 1
    assert_sums_are_the_account_totals(account, exporter, ("crawler",))
    stopped_at_once(account, clock, "crawler")
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_key_up", key="crawler") == 1
    assert exporter.value("notte_sessions_started_total", key="crawler") == 1
    assert exporter.value("notte_sessions_started_total", key=OTHER_KEY) == 1


class FailsTheFirstScan(FaultQueue):
    """Fails the account's first history scan, once."""

    def __init__(self, api: SimulatorServer) -> None:
        super().__init__()
        self._scanning = scanning_the_accounts_history(api)
        self.failed = False

    def take(self, path: str, key: str | None = None) -> Fault | None:
        if not self.failed and self._scanning():
            self.failed = True
            return Fault.status(503)
        return super().take(path, key)


def test_a_short_session_a_failed_history_scan_missed_counts_under_its_key_a_poll_later(
    api: SimulatorServer, account: SimulatedAccount, clock: ManualClock
) -> None:
    exporter = pipeline(api, clock, named_keys(account, "crawler", secrets=Secrets()))
    assert exporter.poll().ok
    faults = api.faults = FailsTheFirstScan(api)
    stopped_at_once(account, clock, "crawler")
    clock.advance(30)
    assert exporter.poll().ok
    assert faults.failed
    assert exporter.value("notte_sessions_started_total") == 0
    clock.advance(30)
    assert exporter.poll().ok
    assert exporter.value("notte_sessions_started_total", key="crawler") == 1
    assert_matches_truth(account, exporter, ("crawler",))
