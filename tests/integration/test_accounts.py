"""Several accounts in one process (--config.file): isolated, labelled, each its own reaper.

Two simulated Notte APIs on loopback, one per account, each accepting only its account's
key; time is the shared ManualClock. Loops run round by round (test_loops.Rounds) where the
test is about the schedule: an account's loop is the thread ``poll-<account>``.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from test_exposition import check_metrics, promtool  # noqa: F401 - a fixture
from test_loops import DEADLINE, Rounds, scraped, until
from test_reaper import leaked, policy_file, writes

from notte_exporter.accounts import Account, NamedKey
from notte_exporter.daemon import Exporter
from notte_exporter.keys import ApiKey
from notte_exporter.logs import LogfmtFormatter, SecretFilter
from notte_exporter.metrics.exposition import OPENMETRICS
from notte_exporter.redaction import Secrets
from notte_exporter.settings import Settings
from notte_exporter.simulator import Fault, ManualClock, SimulatedAccount, SimulatorServer
from support import API_KEY

KEY_ALPHA = "sk-alpha-5d2e8c1b9f7a"
KEY_BETA = "sk-beta-3a6f0e4d2c8b"
NAMES = ("alpha", "beta")
# Families about the process, not an account: once, without `account`.
PROCESS_FAMILIES = {"notte_exporter_build_info"}


@pytest.fixture
def apis(clock: ManualClock) -> Iterator[dict[str, SimulatorServer]]:
    """One simulated API per account, each accepting only that account's key."""
    servers = {
        name: SimulatorServer(
            SimulatedAccount(clock=clock, profile=None),
            api_key=key,
            rate_limit=10_000,
            rate_window=1.0,
            stop_poll_interval=0.005,
        )
        for name, key in zip(NAMES, (KEY_ALPHA, KEY_BETA), strict=True)
    }
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


MakeAccounts = Callable[..., Exporter]


@pytest.fixture
def make_accounts(
    apis: dict[str, SimulatorServer], clock: ManualClock, sleeps: Any
) -> Iterator[MakeAccounts]:
    """An exporter watching both accounts; ``keys`` overrides an account's key value,
    ``reapers`` gives an account a policy file."""
    made: list[Exporter] = []

    def make(
        *,
        keys: dict[str, ApiKey] | None = None,
        reapers: dict[str, Path] | None = None,
        names: dict[str, str] | None = None,
        named: dict[str, tuple[NamedKey, ...]] | None = None,
        loop_wait: Any = threading.Event.wait,
        **overrides: Any,
    ) -> Exporter:
        secrets = Secrets()
        given = {
            "alpha": ApiKey(SecretStr(KEY_ALPHA), secrets=secrets),
            "beta": ApiKey(SecretStr(KEY_BETA), secrets=secrets),
            **(keys or {}),
        }
        accounts = tuple(
            Account(
                name=(names or {}).get(name, name),
                api_url=apis[name].url,
                key=given[name],
                keys=(named or {}).get(name, ()),
                reaper_config_file=(reapers or {}).get(name),
            )
            for name in NAMES
        )
        values: dict[str, Any] = {
            # Never used with accounts: the settings' own key and URL are for single mode.
            "notte_api_key": SecretStr(API_KEY),
            "notte_retries": 0,
            "notte_timeout": 5.0,
            "collector_usage": False,
            "web_listen_address": "127.0.0.1:0",
        }
        values.update(overrides)
        exporter = Exporter(
            Settings(**values),
            None,
            clock=clock.now,
            sleep=sleeps,
            process_metrics=False,
            usage_clock=lambda: clock.now().timestamp(),
            loop_wait=loop_wait,
            accounts=accounts,
        )
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.stop(grace=DEADLINE)


def polls_of(base: str, account: str) -> float | None:
    return scraped(base, "notte_exporter_polls_total", account=account)


def test_an_account_answering_401_leaves_the_other_accounts_polls_on_schedule(
    make_accounts,
) -> None:
    rounds = Rounds()
    revoked = ApiKey(SecretStr("sk-revoked-0a1b2c3d4e5f"), secrets=Secrets())
    exporter = make_accounts(keys={"alpha": revoked}, loop_wait=rounds)
    base = exporter.start().removesuffix("/metrics")
    assert rounds.ended("poll-alpha", 1)
    assert rounds.ended("poll-beta", 1)
    for _ in range(3):
        rounds.run("poll-beta")
    assert polls_of(base, "beta") == 4
    assert polls_of(base, "alpha") == 1
    assert scraped(base, "notte_up", account="alpha") == 0
    assert scraped(base, "notte_up", account="beta") == 1
    assert (
        scraped(base, "notte_exporter_poll_failures_total", account="alpha", reason="unauthorized")
        == 1
    )


def test_an_account_whose_api_hangs_leaves_the_other_accounts_polls_on_schedule(
    apis, make_accounts
) -> None:
    rounds = Rounds()
    release = threading.Event()
    apis["alpha"].faults.push(Fault.hang(release, path="/sessions"))
    exporter = make_accounts(loop_wait=rounds)
    base = exporter.start().removesuffix("/metrics")
    try:
        assert rounds.ended("poll-beta", 1)
        for _ in range(3):
            rounds.run("poll-beta")
        # Alpha is still in its first poll: beta polled and published four times meanwhile.
        assert polls_of(base, "beta") == 4
        assert scraped(base, "notte_up", account="beta") == 1
        assert exporter.pipelines[0].state.last_poll is None
        assert scraped(base, "notte_up", account="alpha") == 0
    finally:
        release.set()
    assert rounds.ended("poll-alpha", 1)
    assert scraped(base, "notte_up", account="alpha") == 1


def exposition_families(exporter: Exporter) -> list[Any]:
    return list(text_string_to_metric_families(exporter.exposition().decode()))


def test_every_notte_series_carries_account_and_no_family_is_repeated(
    apis, clock, make_accounts
) -> None:
    for name, server in apis.items():
        for index in range(2):
            leaked(server.account, clock, f"{name}-{index}")
    exporter = make_accounts(collector_usage=True, sessions_detail_limit=5)
    statuses = exporter.poll_all()
    assert all(status.ok for status in statuses)
    families = exposition_families(exporter)
    names = [family.name for family in families]
    assert len(names) == len(set(names))
    unlabelled = [
        f"{sample.name}{sample.labels}"
        for family in families
        if family.name not in PROCESS_FAMILIES
        for sample in family.samples
        if sample.labels.get("account") not in NAMES
    ]
    assert unlabelled == []
    [build] = [family for family in families if family.name in PROCESS_FAMILIES]
    assert len(build.samples) == 1
    assert "account" not in build.samples[0].labels
    for name in NAMES:
        samples = [
            sample
            for family in families
            if family.name == "notte_session_info"
            for sample in family.samples
            if sample.labels["account"] == name
        ]
        assert sorted(s.labels["session_id"] for s in samples) == [f"{name}-0", f"{name}-1"]


def test_the_openmetrics_exposition_of_several_accounts_parses(apis, clock, make_accounts) -> None:
    leaked(apis["alpha"].account, clock, "alpha-0")
    exporter = make_accounts()
    exporter.poll_all()
    body = exporter.published.reply(OPENMETRICS).body.decode()
    names = [family.name for family in openmetrics_families(body)]
    assert len(names) == len(set(names))
    assert "notte_sessions_active" in names


@pytest.mark.prometheus
def test_promtool_finds_nothing_to_criticise_with_several_accounts(
    apis,
    clock,
    make_accounts,
    promtool,  # noqa: F811 - test_exposition's fixture
) -> None:
    leaked(apis["beta"].account, clock, "beta-0")
    exporter = make_accounts(collector_usage=True, sessions_limit=25)
    exporter.poll_all()
    result = check_metrics(promtool, exporter.exposition())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_a_name_filter_gives_that_family_for_every_account(make_accounts) -> None:
    exporter = make_accounts()
    exporter.poll_all()
    body = exporter.published.reply(query="name[]=notte_up").body.decode()
    [family] = list(text_string_to_metric_families(body))
    assert sorted(s.labels["account"] for s in family.samples) == list(NAMES)


def test_a_reaper_policy_stops_sessions_of_its_own_account_only(
    apis, clock, make_accounts, tmp_path
) -> None:
    for name, server in apis.items():
        leaked(server.account, clock, f"idle-{name}", idle=20)
    exporter = make_accounts(reapers={"alpha": policy_file(tmp_path, dry_run=False)})
    for index in range(3):
        if index:
            clock.advance(30)
        assert all(status.ok for status in exporter.poll_all())
    assert writes(apis["alpha"]) == ["DELETE /sessions/idle-alpha/stop"]
    assert writes(apis["beta"]) == []
    assert apis["beta"].account.session_ids() == ["idle-beta"]
    families = {family.name: family for family in exposition_families(exporter)}
    stops = families["notte_reaper_stops"].samples
    assert {s.labels["account"] for s in stops} == {"alpha"}


def test_readyz_waits_for_every_account_to_finish_a_poll_successful_or_not(
    apis, make_accounts
) -> None:
    release = threading.Event()
    apis["beta"].faults.push(Fault.hang(release, path="/sessions"))
    revoked = ApiKey(SecretStr("sk-revoked-0a1b2c3d4e5f"), secrets=Secrets())
    exporter = make_accounts(keys={"alpha": revoked})
    base = exporter.start().removesuffix("/metrics")
    try:
        assert exporter.pipelines[0].state.wait_for_polls(1, DEADLINE)
        response = httpx.get(f"{base}/readyz", timeout=DEADLINE)
        assert response.status_code == 503
        assert response.text == "not ready: 1 of 2 accounts have not finished a poll yet\n"
    finally:
        release.set()
    assert exporter.pipelines[1].state.wait_for_polls(1, DEADLINE)
    assert httpx.get(f"{base}/readyz", timeout=DEADLINE).status_code == 200
    assert scraped(base, "notte_up", account="alpha") == 0


def test_healthz_fails_when_one_accounts_loop_stops(make_accounts) -> None:
    rounds = Rounds()
    exporter = make_accounts(loop_wait=rounds)
    base = exporter.start().removesuffix("/metrics")
    assert rounds.ended("poll-alpha", 1)
    assert rounds.ended("poll-beta", 1)
    assert httpx.get(f"{base}/healthz", timeout=DEADLINE).status_code == 200
    rounds.fail("poll-beta", RuntimeError("scheduler broke"))
    rounds.next("poll-beta")
    assert rounds.ended("poll-beta", 2)
    assert until(lambda: exporter.health.unhealthy is not None)
    response = httpx.get(f"{base}/healthz", timeout=DEADLINE)
    assert response.status_code == 503
    assert response.text == (
        "unhealthy: the poll loop of account beta stopped: RuntimeError: scheduler broke\n"
    )


def test_the_status_page_has_one_section_per_account(apis, clock, make_accounts) -> None:
    leaked(apis["alpha"].account, clock, "alpha-only")
    exporter = make_accounts()
    exporter.poll_all()
    page = exporter.status_page()
    assert page.count("<h2>Account ") == 2
    alpha, beta = page.split("<h2>Account alpha</h2>")[1].split("<h2>Account beta</h2>")
    assert "alpha-only" in alpha
    assert "alpha-only" not in beta
    assert "2 of 2 accounts up" in page


def test_the_status_page_lists_each_named_key_with_its_live_sessions(apis, make_accounts) -> None:
    simulated = apis["alpha"].account
    secrets = Secrets()
    named = tuple(
        NamedKey(name, ApiKey(SecretStr(simulated.issue_key(name, value)), secrets=secrets))
        for name, value in (("checkout", "sk-checkout-value"), ("crawler", "sk-crawler-value"))
    )
    simulated.start_session(key="crawler")
    simulated.start_session(key="crawler")
    simulated.start_session()
    exporter = make_accounts(named={"alpha": named})
    exporter.poll_all()
    page = exporter.status_page()
    alpha = page.split("<h2>Account alpha</h2>")[1].split("<h2>Account beta</h2>")[0]
    row = (
        r"<tr><td><code>{}</code></td><td><span class=\"ok\">up</span></td>"
        r"\s*<td class=\"num\">{}</td>"
    )
    assert re.search(row.format("crawler", 2), alpha), alpha
    assert re.search(row.format("checkout", 0), alpha), alpha
    assert "sk-checkout-value" not in page
    assert "sk-crawler-value" not in page


def test_each_named_key_counts_its_own_sessions_and_keys_sum_to_the_account(
    apis, make_accounts
) -> None:
    simulated = apis["alpha"].account
    secrets = Secrets()
    named = (
        NamedKey("crawler", ApiKey(SecretStr(simulated.issue_key("crawler")), secrets=secrets)),
    )
    for key in ("crawler", "crawler", None):
        simulated.start_session(key=key)
    exporter = make_accounts(named={"alpha": named})
    exporter.poll_all()
    samples = {
        (s.labels["account"], s.labels.get("key")): s.value
        for family in text_string_to_metric_families(exporter.exposition().decode())
        if family.name == "notte_sessions_active"
        for s in family.samples
        if s.labels["browser_type"] == "chromium"
    }
    assert samples[("alpha", "crawler")] == 2
    assert samples[("alpha", "other")] == 1
    assert ("beta", "crawler") not in samples


def test_a_key_equal_to_an_account_name_never_shows_on_the_page_the_metrics_or_the_log(
    apis, make_accounts
) -> None:
    # Hostile: alpha's key is, as text, beta's name; beta's API refuses it, as it would.
    hostile = "beta-is-this-key"
    secrets = Secrets()
    exporter = make_accounts(
        keys={"alpha": ApiKey(SecretStr(hostile), secrets=secrets)},
        names={"beta": hostile},
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    handler.addFilter(SecretFilter(exporter.redact))
    logger = logging.getLogger("notte_exporter")
    logger.addHandler(handler)
    try:
        base = exporter.start().removesuffix("/metrics")
        assert exporter.pipelines[0].state.wait_for_polls(1, DEADLINE)
        assert exporter.pipelines[1].state.wait_for_polls(1, DEADLINE)
        exporter.reload()
        page = httpx.get(f"{base}/", timeout=DEADLINE).text
    finally:
        logger.removeHandler(handler)
    assert "<h2>Account " in page
    for text in (
        page,
        exporter.exposition().decode(),
        exporter.published.reply(OPENMETRICS).body.decode(),
        stream.getvalue(),
    ):
        assert hostile not in text


def test_sighup_rereads_the_key_file_of_every_account(apis, make_accounts, tmp_path) -> None:
    secrets = Secrets()
    files = {name: tmp_path / f"{name}.key" for name in NAMES}
    files["alpha"].write_text("sk-alpha-old-key-000\n")
    files["beta"].write_text("sk-beta-old-key-000\n")
    keys = {name: ApiKey(path=path, secrets=secrets) for name, path in files.items()}
    exporter = make_accounts(keys=keys)
    assert not any(status.ok for status in exporter.poll_all())
    files["alpha"].write_text(f"{KEY_ALPHA}\n")
    files["beta"].write_text(f"{KEY_BETA}\n")
    changes = exporter.reload()
    assert len(changes) == 2
    assert all("read a new API key" in change for change in changes)
    assert all(status.ok for status in exporter.poll_all())
