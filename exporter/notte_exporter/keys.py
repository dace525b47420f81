"""Where the API key comes from, what a valid key is, and rotation of a key file.

A key is one token of printable ASCII: no spaces, no control characters, at most
``MAX_KEY_LENGTH`` characters. Whitespace around it (the newline of ``echo key > file``) is
stripped. Checking this once, where the key is read, is what keeps a malformed key from
reaching an HTTP header, where it used to fail as an "illegal header value" that quoted the
key and blamed the network. Every problem is described by what is wrong and where the key
came from, never by any part of the value.

A key file is read again on every use and compared by content, not modification time, so a
rotated Kubernetes Secret takes effect without a restart even when the rewrite keeps the
mtime. While the file is briefly empty (being rewritten) the last good key stays in use;
when it holds something that is not a key, polls fail with reason ``invalid_key`` until it
is fixed. Every value read, valid or not, is remembered for redaction.

The file must be a regular file of at most ``KEY_FILE_BYTES`` (files.py): a FIFO, a
device or a directory is refused at start-up (exit 2) and, once running, leaves the last
good key in use while one error line names what is wrong. It is never waited on and never
read past that size, since it is read before every request.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from pydantic import SecretStr

from notte_exporter.errors import ApiError, FailureReason
from notte_exporter.files import KEY_FILE_BYTES, UnfitFileError, read_regular_file
from notte_exporter.redaction import Secrets

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 1024
ENV_SOURCE = "NOTTE_API_KEY"


def key_problem(value: str) -> str | None:
    """What is wrong with a key (already stripped), in words that quote none of it."""
    if not value:
        return "is blank"
    if "\n" in value or "\r" in value:
        return "contains a line break"
    if not value.isascii():
        return "contains a non-ASCII character"
    if any(char.isspace() for char in value):
        return "contains a space or a tab"
    if not value.isprintable():
        return "contains a control character"
    if len(value) > MAX_KEY_LENGTH:
        return f"is longer than {MAX_KEY_LENGTH} characters"
    return None


def file_source(path: Path) -> str:
    return f"--notte.api-key-file {str(path)!r}"


def read_key_file(path: Path) -> tuple[str, str | None]:
    """The stripped key in ``path`` and what is wrong with it (None when it is a valid key).

    Raises OSError when the file cannot be read, files.UnfitFileError when it is no regular file
    of at most ``KEY_FILE_BYTES``.
    """
    return _parse(read_regular_file(path, KEY_FILE_BYTES))


def _parse(raw: bytes) -> tuple[str, str | None]:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace").strip(), "contains a non-ASCII character"
    value = text.strip()
    return value, key_problem(value)


class ApiKey:
    """The current key, from a fixed value or a file; calling it returns the key to send."""

    def __init__(
        self,
        value: SecretStr | None = None,
        path: Path | None = None,
        *,
        secrets: Secrets | None = None,
        source: str | None = None,
    ) -> None:
        """``source`` names the key's origin in messages; by default, the flag or variable."""
        self.secrets = secrets if secrets is not None else Secrets()
        self._source = source
        self._value = value.get_secret_value().strip() if value is not None else ""
        self._path = path
        self._content: bytes | None = None
        self._problem: str | None = None
        # What is wrong with the path itself (a FIFO, too large), said once per change.
        self._unfit: str | None = None
        self._lock = threading.Lock()
        if self._value:
            self.secrets.remember(self._value)
        if path is not None:
            self._read()  # quietly: start-up has checked the file and logs its source

    @property
    def source(self) -> str:
        if self._source is not None:
            return self._source
        return ENV_SOURCE if self._path is None else file_source(self._path)

    def __call__(self) -> str:
        """The key to send; raises ApiError(invalid_key) while the file holds no valid key."""
        if self._path is not None:
            self.reload()
        with self._lock:
            if self._problem is not None:
                raise ApiError(FailureReason.INVALID_KEY, f"{self.source}: the key {self._problem}")
            return self._value

    def reload(self) -> str | None:
        """Read the key file again and log what changed; returns that, or None."""
        change = self._read()
        if change is not None:
            trouble = self._problem is not None or self._unfit is not None
            (log.error if trouble else log.info)("%s", change)
        return change

    def _read(self) -> str | None:
        if self._path is None:
            return None
        with self._lock:
            try:
                content = read_regular_file(self._path, KEY_FILE_BYTES)
            except UnfitFileError as exc:
                if exc.strerror == self._unfit:
                    return None
                self._unfit = exc.strerror
                return f"{self.source} {exc.strerror}; keeping the last key read until it is fixed"
            except OSError as exc:
                # Keep the last key read; the resulting 401s, if any, say what is wrong.
                log.debug("cannot read %s: %s", self.source, exc.strerror)
                return None
            self._unfit = None
            if content == self._content:
                return None
            self._content = content
            value, problem = _parse(content)
            if value:
                self.secrets.remember(value)
            if problem == "is blank" and self._value:
                # Being rewritten: a moment later it holds the new key.
                return None
            if problem is not None:
                self._problem = problem
                return f"the key in {self.source} {problem}; polls fail until it is fixed"
            changed = self._value != value or self._problem is not None
            self._value, self._problem = value, None
            if not changed:
                return None
            return f"read a new API key from {self.source}"

    def redact(self, text: str) -> str:
        return self.secrets.redact(text)

    def __repr__(self) -> str:
        return "ApiKey(<redacted>)"
