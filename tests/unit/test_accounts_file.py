"""The accounts file (``--config.file``): what it accepts, and every way it is refused.

Each refusal is one line per problem naming where it is and what to do, and no line nor
log record holds any part of a key, whatever the file holds: every test here writes keys
of distinctive material and searches every message and every captured log record for them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from notte_exporter.accounts import (
    MAX_VALUES,
    NAME_PATTERN,
    OTHER_KEY,
    Account,
    load_accounts,
    reload_keys,
)
from notte_exporter.errors import ApiError
from notte_exporter.redaction import REDACTED, Secrets
from notte_exporter.settings import AccountsConfigError
from support import NOT_KEY_FILES, make_not_a_key_file

DEFAULT_URL = "https://api.notte.cc"
# Distinctive material, lower-case so that it also makes a valid name.
PROD_KEY = "sk-qz7wx9kp2vn4rt6yb"
CHECKOUT_KEY = "sk-lm3jh8fd5gs1pc0xe"
CRAWLER_KEY = "sk-wt4ub7nc2ye9ra5kd"
STAGING_KEY = "sk-hd72lwq8zm3nv6tpx"
ALL_KEYS = (PROD_KEY, CHECKOUT_KEY, CRAWLER_KEY, STAGING_KEY)

EXAMPLE = """\
accounts:
  - name: prod
    api_url: http://127.0.0.1:8080/
    key_file: prod/key
    sessions_limit: 100
    keys:
      - name: checkout-agent
        key_file: prod/checkout
      - name: crawler
        key_file: {folder}/prod/crawler
  - name: staging
    key_file: staging/key
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A config folder with the example's key files, each ending in a newline as echo writes."""
    for name, key in [
        ("prod/key", PROD_KEY),
        ("prod/checkout", CHECKOUT_KEY),
        ("prod/crawler", CRAWLER_KEY),
        ("staging/key", STAGING_KEY),
    ]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(key + "\n")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "accounts.yaml"
    path.write_text(text.format(folder=folder))
    return path


def load(path: Path, secrets: Secrets | None = None) -> tuple[Account, ...]:
    return load_accounts(path, default_api_url=DEFAULT_URL, secrets=secrets or Secrets())


def refusal(path: Path, caplog: pytest.LogCaptureFixture) -> list[str]:
    """The problems loading ``path`` reports, after checking that none shows a key."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AccountsConfigError) as caught:
        load(path)
    said = "\n".join([*caught.value.problems, str(caught.value), caplog.text])
    for key in ALL_KEYS:
        assert key not in said
        assert key.removeprefix("sk-") not in said
    assert caught.value.path == path
    assert all("\n" not in problem for problem in caught.value.problems)
    return caught.value.problems


def test_the_example_loads_with_defaults_and_paths_from_the_files_folder(folder: Path) -> None:
    secrets = Secrets()
    prod, staging = load(write(folder, EXAMPLE), secrets)
    assert (prod.name, prod.api_url, prod.sessions_limit) == ("prod", "http://127.0.0.1:8080", 100)
    assert (staging.name, staging.api_url, staging.sessions_limit) == ("staging", DEFAULT_URL, None)
    assert [named.name for named in prod.keys] == ["checkout-agent", "crawler"]
    assert staging.keys == ()
    assert prod.keyed
    assert staging.keyed
    assert [prod.key(), *(named.key() for named in prod.keys), staging.key()] == list(ALL_KEYS)


def test_every_key_shares_the_one_redaction_step(folder: Path) -> None:
    secrets = Secrets()
    prod, staging = load(write(folder, EXAMPLE), secrets)
    assert all(key.secrets is secrets for key in (prod.key, staging.key, prod.keys[0].key))
    assert secrets.redact(" ".join(ALL_KEYS)) == " ".join([REDACTED] * 4)


def test_a_key_value_that_is_also_an_account_name_is_refused_unquoted(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Redaction would turn that account's label into <redacted> on every series.
    path = write(folder, f"accounts:\n  - name: {PROD_KEY}\n    key_file: prod/key\n")
    assert refusal(path, caplog) == [
        f"accounts[0].key_file: {str(folder / 'prod/key')!r}: the key is also the name (or part "
        "of the name) of an account or key in this file; names are shown on every series and "
        "keys never are, so rename it"
    ]


def test_a_key_value_inside_a_key_name_is_refused(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        "accounts:\n  - name: prod\n    key_file: prod/key\n    keys:\n"
        f"      - name: team-{CHECKOUT_KEY}\n        key_file: prod/checkout\n"
    )
    [problem] = refusal(write(folder, text), caplog)
    assert problem.startswith("accounts[0].keys[0].key_file: ")
    assert "the key is also the name (or part of the name)" in problem


@pytest.mark.timeout(10)
def test_a_billion_laughs_file_is_refused_without_expanding_it(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nine levels of ten aliases each: 10**9 values once expanded, a few hundred bytes written.
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]
    lines += ["accounts: *a9"]
    assert refusal(write(folder, "\n".join(lines)), caplog) == [
        f"holds more than {MAX_VALUES} values once its aliases (*name) are expanded; "
        "write each account out"
    ]


def test_a_file_whose_aliases_point_at_themselves_is_refused(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert (
        "once its aliases (*name) are expanded"
        in refusal(write(folder, "accounts: &loop [*loop]"), caplog)[0]
    )


def test_an_alias_used_as_intended_is_accepted(folder: Path) -> None:
    text = (
        "accounts:\n  - name: prod\n    api_url: &url http://127.0.0.1:9/\n    key_file: prod/key\n"
        "  - name: staging\n    api_url: *url\n    key_file: staging/key\n"
    )
    assert [account.api_url for account in load(write(folder, text))] == ["http://127.0.0.1:9"] * 2


def test_a_file_larger_than_a_mebibyte_is_refused_unread(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(folder, EXAMPLE + "#" * (1024 * 1024))
    assert refusal(path, caplog) == ["is larger than 1 MiB"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("kind", "problem"), NOT_KEY_FILES)
def test_a_key_file_that_is_no_regular_file_of_at_most_64_kib_is_refused(
    folder: Path, caplog: pytest.LogCaptureFixture, kind: str, problem: str
) -> None:
    (folder / "prod/crawler").unlink()
    make_not_a_key_file(folder / "prod/crawler", kind)
    assert refusal(write(folder, EXAMPLE), caplog) == [
        f"accounts[0].keys[1].key_file: {str(folder / 'prod/crawler')!r}: {problem}"
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (f"{PROD_KEY}\n{CHECKOUT_KEY}\n", "contains a line break"),
        (f"{PROD_KEY} {CHECKOUT_KEY}", "contains a space or a tab"),
        ("\n", "is blank"),
    ],
)
def test_a_key_file_that_holds_no_single_key_is_refused_unquoted(
    folder: Path, caplog: pytest.LogCaptureFixture, content: str, problem: str
) -> None:
    (folder / "staging/key").write_text(content)
    assert refusal(write(folder, EXAMPLE), caplog) == [
        f"accounts[1].key_file: {str(folder / 'staging/key')!r}: the key {problem}; "
        "the file must hold the key alone"
    ]


def test_a_missing_key_file_is_named(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    (folder / "staging/key").unlink()
    assert refusal(write(folder, EXAMPLE), caplog) == [
        f"accounts[1].key_file: {str(folder / 'staging/key')!r}: cannot read it: "
        "No such file or directory"
    ]


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Prod", "'Prod'"),
        ("prod_eu", "'prod_eu'"),
        ("-prod", "'-prod'"),
        ("a" * 64, "a name of 64 characters"),
        ("p" * 200, "a name of 200 characters"),
    ],
)
def test_a_name_that_is_no_label_value_is_refused(
    folder: Path, caplog: pytest.LogCaptureFixture, name: str, shown: str
) -> None:
    path = write(folder, EXAMPLE.replace("name: staging", f"name: {name}"))
    assert refusal(path, caplog) == [
        f"accounts[1].name: {shown} is not a name: use lower-case letters, digits and inner "
        "dashes, at most 63 of them (it becomes a label value)"
    ]


def test_names_allowed_are_those_of_the_shared_pattern() -> None:
    assert NAME_PATTERN.fullmatch("a" * 63)
    assert NAME_PATTERN.fullmatch("prod-eu-1")


def test_account_names_used_twice_are_refused(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(folder, EXAMPLE.replace("name: staging", "name: prod"))
    assert refusal(path, caplog) == [
        "accounts[1].name: 'prod' is already the name of accounts[0]; each account needs a "
        "name of its own"
    ]


def test_key_names_used_twice_in_one_account_are_refused_but_not_across_accounts(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    again = EXAMPLE.replace("name: crawler", "name: checkout-agent")
    assert refusal(write(folder, again), caplog) == [
        "accounts[0].keys[1].name: 'checkout-agent' is already the name of accounts[0].keys[0]; "
        "each key needs a name of its own in this account"
    ]
    elsewhere = EXAMPLE + "    keys:\n      - name: crawler\n        key_file: prod/crawler\n"
    assert len(load(write(folder, elsewhere))) == 2


def test_an_invalid_name_used_twice_is_said_once_per_use(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    long = "p" * 200
    text = EXAMPLE.replace("name: prod", f"name: {long}").replace("name: staging", f"name: {long}")
    problems = refusal(write(folder, text), caplog)
    assert [problem.split(":")[0] for problem in problems] == [
        "accounts[0].name",
        "accounts[1].name",
    ]
    assert all(long not in problem for problem in problems)


def test_an_account_may_share_its_name_with_a_key(folder: Path) -> None:
    text = EXAMPLE.replace("name: crawler", "name: staging")
    assert [named.name for named in load(write(folder, text))[0].keys][1] == "staging"


def test_a_key_named_other_is_refused(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(folder, EXAMPLE.replace("name: crawler", f"name: {OTHER_KEY}"))
    assert refusal(path, caplog) == [
        "accounts[0].keys[1].name: 'other' is reserved: it labels the sessions no named key "
        "claims; choose another name"
    ]


def test_unknown_fields_are_named_with_the_fields_there_are(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        EXAMPLE.replace("sessions_limit", "session_limit").replace(
            "        key_file: prod/checkout", "        keyfile: prod/checkout"
        )
        + "acount: x\n"
    )
    assert sorted(refusal(write(folder, text), caplog)) == [
        "accounts[0].keys[0].key_file: missing; give the path of a file holding the key",
        "accounts[0].keys[0].keyfile: unknown field; the fields are name, key_file",
        "accounts[0].session_limit: unknown field; the fields are name, api_url, key_file, "
        "sessions_limit, keys, reaper_config_file",
        "acount: unknown field; the fields are accounts",
    ]


def test_every_problem_of_a_file_is_reported_at_once(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = """\
accounts:
  - name: prod
    api_url: https://user:pass@api.notte.cc
    key_file: prod/key
    sessions_limit: 0
  - name: staging
    sessions_limit: "100"
    reaper_config_file: prod
  - name: staging
    key_file: staging/key
"""
    assert refusal(write(folder, text), caplog) == [
        "accounts[0].api_url: must not hold a user name or password (before @): the key goes "
        "in key_file",
        "accounts[0].sessions_limit: must be a whole number of at least 1",
        "accounts[1].key_file: missing; give the path of a file holding the key",
        "accounts[1].sessions_limit: must be a whole number of at least 1",
        f"accounts[1].reaper_config_file: {str(folder / 'prod')!r}: is a directory, not a "
        "regular file",
        "accounts[2].name: 'staging' is already the name of accounts[1]; each account needs a "
        "name of its own",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "accounts: missing; list the accounts to watch, each with a name and a key_file"),
        ("accounts:", "accounts: is empty; list the accounts to watch, each with a name and a "
         "key_file"),
        ("- prod", "the file: must be a mapping (field: value)"),
        ("accounts: prod", "accounts: must be a list (one '- ' item each)"),
        ("accounts: [prod]", "accounts[0]: must be a mapping (field: value)"),
        ("accounts: [", "not valid YAML (line 2)"),
        ("accounts: " + "[" * 100_000, "not valid YAML (line 1)"),
    ],
)  # fmt: skip
def test_a_file_of_the_wrong_shape_says_what_shape_it_needs(
    folder: Path, caplog: pytest.LogCaptureFixture, text: str, problem: str
) -> None:
    assert refusal(write(folder, text), caplog) == [problem]


def test_a_config_file_that_is_a_fifo_is_refused_without_waiting(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = folder / "accounts.yaml"
    os.mkfifo(path)
    assert refusal(path, caplog) == ["is a FIFO, not a regular file"]


def test_the_reaper_policy_file_is_resolved_and_kept_for_the_daemon(folder: Path) -> None:
    (folder / "prod/reaper.yaml").write_text("policies: []\n")
    text = EXAMPLE.replace("sessions_limit: 100", "reaper_config_file: prod/reaper.yaml")
    prod, staging = load(write(folder, text))
    assert prod.reaper_config_file == folder / "prod/reaper.yaml"
    assert staging.reaper_config_file is None


def test_reloading_the_keys_reports_each_rotation_by_account_and_key(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    accounts = load(write(folder, EXAMPLE))
    assert reload_keys(accounts) == []
    rotated = "sk-nq5rv8xc1bm6ky3wz"
    (folder / "prod/crawler").write_text(rotated + "\n")
    caplog.set_level(logging.INFO)
    assert reload_keys(accounts) == [
        f"read a new API key from key_file {str(folder / 'prod/crawler')!r} of key crawler of prod"
    ]
    assert accounts[0].keys[1].key() == rotated
    assert accounts[0].key.secrets.redact(rotated) == REDACTED
    assert rotated not in caplog.text


def test_a_broken_key_file_while_running_names_its_account(folder: Path) -> None:
    accounts = load(write(folder, EXAMPLE))
    (folder / "staging/key").write_text(f"{STAGING_KEY}\n{PROD_KEY}\n")
    with pytest.raises(ApiError) as caught:
        accounts[1].key()
    assert str(caught.value) == (
        f"invalid_key: key_file {str(folder / 'staging/key')!r} of account staging: "
        "the key contains a line break"
    )
    assert STAGING_KEY not in str(caught.value)


def test_the_readmes_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Several accounts and keys", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    example = example.replace("/etc/notte/", f"{tmp_path}/")
    for line in example.splitlines():
        if "_file:" in line:
            path = Path(line.split("_file:", 1)[1].split("#")[0].strip())
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"sk-{path.parent.name}-{path.stem}-q8x\n")
    prod, staging = load(write(tmp_path, example))
    assert [named.name for named in prod.keys] == ["checkout-agent", "crawler"]
    assert (prod.sessions_limit, staging.api_url) == (100, DEFAULT_URL)
