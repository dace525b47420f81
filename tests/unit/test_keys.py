import os

from pydantic import SecretStr

from notte_exporter.keys import ApiKey


def test_a_key_file_is_read_again_when_it_changes(tmp_path) -> None:
    path = tmp_path / "api-key"
    path.write_text("sk-old\n")
    key = ApiKey(path=path)
    assert key() == "sk-old"
    path.write_text("sk-rotated\n")

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert key() == "sk-rotated"
    assert key.known_values() == ["sk-old", "sk-rotated"]


def test_a_vanished_key_file_keeps_the_last_key(tmp_path) -> None:
    path = tmp_path / "api-key"
    path.write_text("sk-1")
    key = ApiKey(path=path)
    key()
    path.unlink()
    assert key() == "sk-1"


def test_the_key_never_shows_in_its_repr() -> None:
    assert "sk-secret" not in repr(ApiKey(SecretStr("sk-secret")))
