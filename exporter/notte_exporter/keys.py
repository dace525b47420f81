"""Where the API key comes from: the environment, or a file re-read when it changes.

Reading the file again whenever its modification time changes lets a rotated Kubernetes
Secret take effect without restarting the exporter, which matters most exactly when the old
key expired and every poll fails with 401.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pydantic import SecretStr


class ApiKey:
    def __init__(self, value: SecretStr | None = None, path: Path | None = None) -> None:
        self._value = value.get_secret_value() if value is not None else ""
        self._path = path
        self._mtime: int | None = None
        self._known: list[str] = [self._value] if self._value else []
        self._lock = threading.Lock()

    def __call__(self) -> str:
        if self._path is None:
            return self._value
        with self._lock:
            try:
                mtime = self._path.stat().st_mtime_ns
                if mtime != self._mtime:
                    self._value = self._path.read_text(encoding="utf-8").strip()
                    self._mtime = mtime
                    if self._value and self._value not in self._known:
                        # The last few keys stay redacted; rotations are rare, memory is not.
                        self._known = [*self._known[-4:], self._value]
            except OSError:
                pass  # keep the last key read; the resulting 401s say what is wrong
            return self._value

    def known_values(self) -> list[str]:
        """Every key value seen, for the log filter that redacts them."""
        with self._lock:
            return list(self._known)

    def __repr__(self) -> str:
        return "ApiKey(<redacted>)"
