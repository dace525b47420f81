"""What the HTTP server hands the routes, and what it gets back: one request, one response.

The routes (``web/routes.py``, behind ``web/auth.py``) answer in two ways, and the server picks:

* ``answer_now`` runs on the server's event loop and must never wait: it answers from what
  is already in memory (the published exposition, the readiness flag, a cached password
  check), or returns None to say "this one needs a thread";
* ``answer`` runs on one of the server's ``--web.max-requests`` worker threads and may take
  its time (rendering the status page, a bcrypt check, re-reading the web config files).

So the scrapes that matter cost no hand-off between threads, and nothing slow ever holds
the loop that reads every connection. Both ways give the same answer to the same request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Request:
    """A request, as the routes need it: no body (they answer GET and HEAD only)."""

    method: str
    path: str
    query: str = ""
    # Lower-case names; a header sent several times is joined with "," (as WSGI does).
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, method: str, path: str, query: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> Request:
        joined: dict[str, str] = {}
        for raw_name, raw_value in headers:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            joined[name] = f"{joined[name]},{value}" if name in joined else value
        return cls(method, path, query, joined)


@dataclass(frozen=True)
class Response:
    """Status, headers and the body a GET gets (the server leaves it out for HEAD)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Handler(Protocol):
    def answer_now(self, request: Request) -> Response | None:
        """The answer without waiting for anything, or None if it needs a worker thread."""

    def answer(self, request: Request) -> Response:
        """The answer; may block (runs on a worker thread)."""
