"""How operator files are read: regular files only, never waited on, never read past a bound."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from notte_exporter import files
from notte_exporter.files import UnfitFileError, read_regular_file


def test_a_symlink_to_a_regular_file_is_read_as_mounted_secrets_are_laid_out(tmp_path) -> None:
    data = tmp_path / "..data"
    data.mkdir()
    (data / "api-key").write_text("sk-mounted\n")
    (tmp_path / "api-key").symlink_to(Path("..data") / "api-key")
    assert read_regular_file(tmp_path / "api-key", 64) == b"sk-mounted\n"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_file_that_states_size_zero_is_read_no_further_than_the_limit() -> None:
    # /proc files state a size of 0 and hold more: only the bytes read count.
    assert os.stat("/proc/self/status").st_size == 0
    with pytest.raises(UnfitFileError) as caught:
        read_regular_file(Path("/proc/self/status"), 16)
    assert caught.value.strerror == "is larger than 16 bytes"


@pytest.mark.timeout(10)
def test_a_path_swapped_for_a_fifo_after_the_look_is_refused_not_waited_on(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regular, fifo = tmp_path / "regular", tmp_path / "fifo"
    regular.write_text("sk-key\n")
    os.mkfifo(fifo)
    look = os.stat

    def stale_look(path: os.PathLike[str] | str, *args: object, **kwargs: object) -> object:
        # What os.stat said a moment before the file was replaced by a FIFO.
        return look(regular) if Path(path) == fifo else look(path, *args, **kwargs)

    monkeypatch.setattr(files.os, "stat", stale_look)
    with pytest.raises(UnfitFileError) as caught:
        read_regular_file(fifo, 64)
    assert caught.value.strerror == "is a FIFO, not a regular file"
