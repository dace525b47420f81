"""Reading the operator's files (key file, web config, certificates): regular files only, bounded.

A path an operator names can turn out to be anything: a FIFO (opening it waits for a writer
that may never come, and start-up or a reload hangs), a device (``/dev/zero`` never ends, and
reading it whole grows the process until it dies), a directory, or a file far larger than any
key or certificate. So every such file is read by ``read_regular_file``, which

- refuses anything but a regular file (a symlink is followed: a mounted Secret is a chain of
  them), looking with ``os.stat`` before opening, so that a FIFO is never opened for a wait;
- opens with ``O_NONBLOCK`` and looks again at what it opened (``os.fstat``), so that a file
  swapped for something else in between is refused rather than waited on;
- reads at most ``limit + 1`` bytes, whatever the file claims its size is, and refuses the
  file when there is more than ``limit``.

What is wrong is an ``UnfitFileError`` (an ``OSError``, so that callers which already handle a file
that cannot be read handle this one too), whose ``strerror`` names it in words that follow the
file's name: "is a FIFO, not a regular file", "is larger than 64 KiB".

Python's ``ssl`` reads certificates and keys by path only: ``opened_regular_file`` keeps the
checked file open and offers a path to that very file (``/dev/fd/N``), so that what the
library opens is what was checked.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
# Far above what each holds (a key with whitespace around it; a YAML document, a PEM chain,
# key or CA bundle), and small enough to read whole on every look.
KEY_FILE_BYTES = 64 * KIB
WEB_FILE_BYTES = MIB

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_FD_FOLDER = Path("/dev/fd")


class UnfitFileError(OSError):
    """A path that is there but is no regular file of a size worth reading."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(errno.EINVAL, problem, str(path))


def size_text(limit: int) -> str:
    """``65536`` -> ``64 KiB``, for messages."""
    if limit % MIB == 0:
        return f"{limit // MIB} MiB"
    if limit % KIB == 0:
        return f"{limit // KIB} KiB"
    return f"{limit} bytes"


def _check(path: Path, status: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(status.st_mode):
        kind = next((name for test, name in _KINDS if test(status.st_mode)), "not a file")
        raise UnfitFileError(path, f"is {kind}, not a regular file")
    if status.st_size > limit:
        raise UnfitFileError(path, f"is larger than {size_text(limit)}")


@dataclass(frozen=True)
class RegularFile:
    """A checked file, still open: its content, and a path that opens that same file."""

    content: bytes
    reopen: str


@contextmanager
def opened_regular_file(path: Path, limit: int) -> Iterator[RegularFile]:
    """The checked file at ``path``, kept open while the block runs (see the module).

    Raises ``UnfitFileError`` for anything but a regular file of at most ``limit`` bytes, and
    ``OSError`` when it cannot be read at all.
    """
    _check(path, os.stat(path), limit)
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        _check(path, os.fstat(descriptor), limit)
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            content = file.read(limit + 1)
        if len(content) > limit:
            raise UnfitFileError(path, f"is larger than {size_text(limit)}")
        reopen = _FD_FOLDER / str(descriptor)
        yield RegularFile(content, str(reopen) if reopen.exists() else str(path))
    finally:
        os.close(descriptor)


def read_regular_file(path: Path, limit: int) -> bytes:
    """The content of ``path``, a regular file of at most ``limit`` bytes (see the module).

    Raises ``UnfitFileError`` for anything else, and ``OSError`` when it cannot be read at all.
    """
    with opened_regular_file(path, limit) as file:
        return file.content


def unreadable(exc: OSError) -> str:
    """Why a file cannot be used, in words that follow its quoted name and a colon."""
    if isinstance(exc, UnfitFileError):
        return str(exc.strerror)
    return f"cannot read it: {exc.strerror or exc}"
