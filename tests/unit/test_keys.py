import logging
import os

import pytest
from pydantic import SecretStr

from notte_exporter.errors import ApiError, FailureReason
from notte_exporter.keys import ApiKey, key_problem
from notte_exporter.redaction import Secrets
from support import NOT_KEY_FILES, make_not_a_key_file


def test_a_key_file_is_read_again_when_it_changes(tmp_path) -> None:
    path = tmp_path / "api-key"
    path.write_text("sk-old\n")
    key = ApiKey(path=path)
    assert key() == "sk-old"
    path.write_text("sk-rotated\n")
    assert key() == "sk-rotated"
    assert set(key.secrets.values()) == {"sk-old", "sk-rotated"}


def test_a_rewrite_that_keeps_the_modification_time_is_still_read(tmp_path) -> None:
    path = tmp_path / "api-key"
    path.write_text("sk-old-1\n")
    key = ApiKey(path=path)
    mtime = path.stat().st_mtime_ns
    path.write_text("sk-new-2\n")
    os.utime(path, ns=(mtime, mtime))
    assert key() == "sk-new-2"


def test_a_briefly_empty_key_file_keeps_the_last_good_key(tmp_path) -> None:
    path = tmp_path / "api-key"
    path.write_text("sk-good-1\n")
    key = ApiKey(path=path)
    path.write_text("")
    assert key() == "sk-good-1"


def test_a_key_file_that_turns_invalid_fails_with_invalid_key_naming_the_file(tmp_path) -> None:
    path = tmp_path / "api-key"
    path.write_text("sk-good-1\n")
    key = ApiKey(path=path)
    path.write_text("sk-bad-secret\nsecond-line\n")
    with pytest.raises(ApiError) as caught:
        key()
    assert caught.value.reason == FailureReason.INVALID_KEY
    assert str(path) in caught.value.message
    assert "contains a line break" in caught.value.message
    assert "sk-bad" not in caught.value.message
    path.write_text("sk-fixed-1\n")
    assert key() == "sk-fixed-1"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is blank"),
        ("sk-a\nb", "contains a line break"),
        ("sk-\u00e9", "contains a non-ASCII character"),
        ("sk a", "contains a space or a tab"),
        ("sk\ta", "contains a space or a tab"),
        ("sk\x00a", "contains a control character"),
        ("k" * 2000, "is longer than 1024 characters"),
        ("sk-fine-123", None),
    ],
)
def test_what_a_key_may_be(value, problem) -> None:
    assert key_problem(value) == problem


def test_redaction_removes_every_key_held_and_any_bearer_token() -> None:
    secrets = Secrets()
    secrets.remember("sk-one-111")
    secrets.remember("sk-two-222\nsecond-part")
    text = "sk-one-111 sk-two-222 second-part Authorization: Bearer sk-never-seen"
    redacted = secrets.redact(text)
    for fragment in ("sk-one-111", "sk-two-222", "second-part", "sk-never-seen"):
        assert fragment not in redacted
    assert redacted.count("<redacted>") == 4


def test_a_vanished_key_file_keeps_the_last_key(tmp_path) -> None:
    path = tmp_path / "api-key"
    path.write_text("sk-1")
    key = ApiKey(path=path)
    key()
    path.unlink()
    assert key() == "sk-1"


def test_the_key_never_shows_in_its_repr() -> None:
    assert "sk-secret" not in repr(ApiKey(SecretStr("sk-secret")))


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("kind", "problem"), NOT_KEY_FILES)
def test_a_key_file_replaced_by_no_key_file_keeps_the_last_key_and_says_why_once(
    tmp_path, caplog, kind: str, problem: str
) -> None:
    path = tmp_path / "api-key"
    path.write_text("sk-good-1\n")
    key = ApiKey(path=path)
    path.unlink()
    make_not_a_key_file(path, kind)
    with caplog.at_level(logging.INFO, logger="notte_exporter.keys"):
        assert key() == "sk-good-1"
        assert key.reload() is None  # said once, not on every request
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        f"--notte.api-key-file {str(path)!r} {problem}; keeping the last key read until it is fixed"
    )
