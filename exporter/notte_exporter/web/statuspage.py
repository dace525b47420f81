"""The status page at ``/``: what an operator wants to see first, server-rendered.

In the manner of exporter-toolkit's landing page plus blackbox_exporter's recent-probes
table: what runs (version, Python, start time, uptime, demo or live), with which settings,
how the last polls went, what is live now, and where the endpoints are.

Invariants, and why:

- No JavaScript and no external assets: the page works offline, behind an air gap and under
  the strict ``CONTENT_SECURITY_POLICY`` sent with it, which allows nothing but the one
  stylesheet inlined here, pinned by its hash.
- Every value that comes from the API or the settings (session ids, browser types, URLs,
  paths, failure messages) passes through ``html.escape``: an id such as
  ``<script>`` is shown, never run. The key is never on the page: only where it comes from.
  Session ids are shown as their label values (redacted and cut when the snapshot was taken:
  ``labels.text_label``), so an id of any length costs the page no more than a short one.
- Readable on a phone (a viewport, tables that scroll sideways in their own box) and in
  dark mode (``prefers-color-scheme``).
- Rendering is a pure function of a ``StatusView``, so tests render pages from made-up
  views with hostile values, and the clock is an argument.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from notte_exporter.durations import format_duration
from notte_exporter.polling.snapshot import Snapshot
from notte_exporter.polling.state import PollStatus

DOCS_URL = "https://github.com/notte-exporter/notte-exporter#readme"
OLDEST_SHOWN = 5

_STYLE = """
:root { color-scheme: light dark; --bg: #fff; --fg: #1b1f24; --muted: #59636e;
  --line: #d1d9e0; --head: #f6f8fa; --ok: #1a7f37; --bad: #cf222e; --warn-bg: #fff8c5;
  --warn-fg: #4d2d00; --link: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --head: #151b23;
    --ok: #3fb950; --bad: #f85149; --warn-bg: #3b2e00; --warn-fg: #f2cc60;
    --link: #4493f8; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 62rem; padding: 1rem; background: var(--bg);
  color: var(--fg); font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
a { color: var(--link); }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; border-bottom: 1px solid var(--line); }
.lede { color: var(--muted); margin: 0 0 1rem; }
.banner { background: var(--warn-bg); color: var(--warn-fg); border: 2px solid currentColor;
  border-radius: 6px; padding: .75rem 1rem; font-weight: 600; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; margin: 0 0 1rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; padding: .2rem 0; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line);
  vertical-align: top; white-space: nowrap; }
td.wrap { white-space: normal; min-width: 14rem; }
th { background: var(--head); }
td.num, th.num { text-align: right; }
code { font-size: .9em; }
dd code { overflow-wrap: anywhere; }
ul.links { padding-left: 1.2rem; }
@media (max-width: 40rem) { dl { grid-template-columns: 1fr; } dd { margin-bottom: .4rem; } }
"""

# Nothing may load or run but the stylesheet above: no scripts, images, fonts, frames or
# form targets, and the page may not be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class ReaperAction:
    """One thing the reaper did to a session (reaper/reaper.py), for the page."""

    at: datetime
    session_id: str
    policy: str
    result: str
    browser_type: str
    age_seconds: float
    idle_seconds: float
    http_status: int | None = None


@dataclass(frozen=True)
class ReaperView:
    """The reaper's section: its policies, dry run or not, and what it did last."""

    config_file: str
    dry_run: bool
    max_stops_per_poll: int
    max_stops_per_hour: int
    excluded: int
    # (name, conditions in words, browser types in words), in the file's order.
    policies: tuple[tuple[str, str, str], ...]
    candidates: Mapping[str, int]
    # Newest first.
    actions: tuple[ReaperAction, ...] = ()


@dataclass(frozen=True)
class KeyRow:
    """One named key of an account: the sessions it holds, whether its listing works."""

    name: str
    live_sessions: int | None  # None until a listing of the key has worked
    up: bool | None  # None until the key was listed
    last_poll: datetime | None


@dataclass(frozen=True)
class AccountView:
    """One account's section (``--config.file``): its API, polls, sessions, keys and reaper."""

    name: str
    api_url: str
    key_source: str
    sessions_limit: int | None
    polls: Sequence[PollStatus] = field(default=())
    snapshot: Snapshot | None = None
    reaper: ReaperView | None = None
    keys: tuple[KeyRow, ...] = ()


@dataclass(frozen=True)
class StatusView:
    """Everything the page shows, gathered at one moment."""

    version: str
    python_version: str
    started_at: datetime
    now: datetime
    demo: bool
    telemetry_path: str
    api_url: str
    key_source: str
    poll_interval: float
    poll_timeout: float
    page_size: int
    lookup_budget: int
    sessions_limit: int | None
    detail_limit: int
    polls: Sequence[PollStatus] = field(default=())
    snapshot: Snapshot | None = None
    # None: no reaper configured (--reaper.config.file), and no section.
    reaper: ReaperView | None = None
    # With --config.file, one per account, each shown in a section of its own, in place of
    # the one account's sessions, polls and reaper above; empty without it.
    accounts: tuple[AccountView, ...] = ()


def render(view: StatusView) -> str:
    """The whole page as HTML text."""
    if view.accounts:
        watched = [_account(view, account) for account in view.accounts]
    else:
        watched = [
            _section("Live sessions", _sessions(view.snapshot, view.detail_limit)),
            _section("Recent polls", _polls(view.polls)),
            *([_section("Reaper", _reaper(view.reaper))] if view.reaper is not None else []),
        ]
    body = "\n".join(
        [
            _header(view),
            *watched,
            _section("Settings", _settings(view)),
            _section("This exporter", _about(view)),
            _section("Endpoints", _links(view)),
        ]
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Notte exporter{" (demo)" if view.demo else ""}</title>
<style>{_STYLE}</style>
</head>
<body>
{body}
</body>
</html>
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _section(title: str, content: str) -> str:
    return f"<section>\n<h2>{_e(title)}</h2>\n{content}\n</section>"


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float) -> str:
    """A coarse, readable age: ``3d 4h``, ``2h 5m``, ``4m 10s``, ``12s``."""
    whole = max(int(seconds), 0)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _poll_duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _header(view: StatusView) -> str:
    state = _accounts_state(view.accounts) if view.accounts else _state(view, view.polls)
    banner = ""
    if view.demo:
        banner = (
            '\n<p class="banner" role="alert">Demo mode: every number here and on '
            f'<a href="{_e(view.telemetry_path)}">{_e(view.telemetry_path)}</a> comes from a '
            "built-in simulated Notte account, not from yours. Run without --demo to watch a "
            "real account.</p>"
        )
    return (
        "<header>\n<h1>Notte exporter</h1>\n"
        '<p class="lede">Prometheus exporter for the sessions of a Notte cloud-browser '
        f"account. Status: {state}.</p>{banner}\n</header>"
    )


def _state(view: StatusView, polls: Sequence[PollStatus]) -> str:
    """How the last of ``polls`` went, in words (already escaped)."""
    last = polls[0] if polls else None
    if last is None:
        return '<span class="muted">waiting for the first poll</span>'
    if last.ok:
        return f'<span class="ok">up</span>: the last poll succeeded {_ago(view, last)}'
    reason = last.reason.value if last.reason else "failed"
    return f'<span class="bad">down</span>: the last poll failed {_ago(view, last)} ({_e(reason)})'


def _accounts_state(accounts: Sequence[AccountView]) -> str:
    up = sum(1 for account in accounts if account.polls and account.polls[0].ok)
    css = "ok" if up == len(accounts) else "bad"
    return f'<span class="{css}">{up} of {len(accounts)} accounts up</span>'


def _account(view: StatusView, account: AccountView) -> str:
    """One account's section: its settings, keys, live sessions, polls and reaper."""
    limit = "not set" if account.sessions_limit is None else str(account.sessions_limit)
    facts = _definitions(
        [
            ("Status", _state(view, account.polls)),
            ("Notte API", f"<code>{_e(account.api_url)}</code>"),
            ("API key from", _e(account.key_source)),
            ("Plan limit", _e(limit)),
        ]
    )
    parts = [
        facts,
        _keys(account.keys),
        "<h3>Live sessions</h3>",
        _sessions(account.snapshot, view.detail_limit),
        "<h3>Recent polls</h3>",
        _polls(account.polls),
    ]
    if account.reaper is not None:
        parts += ["<h3>Reaper</h3>", _reaper(account.reaper)]
    return _section(f"Account {account.name}", "\n".join(parts))


def _keys(keys: Sequence[KeyRow]) -> str:
    if not keys:
        return '<p class="muted">No named keys: every session counts as key "other".</p>'
    rows = []
    for key in keys:
        if key.up is None:
            up = '<span class="muted">not listed yet</span>'
        else:
            up = '<span class="ok">up</span>' if key.up else '<span class="bad">down</span>'
        live = "" if key.live_sessions is None else str(key.live_sessions)
        last = "" if key.last_poll is None else _utc(key.last_poll)
        rows.append(
            f"<tr><td><code>{_e(key.name)}</code></td><td>{up}</td>"
            f'<td class="num">{live}</td><td>{last}</td></tr>'
        )
    body = "\n".join(rows)
    return (
        '<div class="scroll"><table>\n<caption class="muted">Named keys</caption>\n'
        '<thead><tr><th scope="col">Key</th><th scope="col">Listing</th>'
        '<th scope="col" class="num">Live sessions</th><th scope="col">Last poll</th></tr>'
        f"</thead>\n<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def _ago(view: StatusView, poll: PollStatus) -> str:
    return f"{_age((view.now - poll.finished_at).total_seconds())} ago"


def _sessions(snapshot: Snapshot | None, detail_limit: int) -> str:
    if snapshot is None:
        return "<p>No successful poll yet, so nothing is known about live sessions.</p>"
    lines = [
        f"<p><strong>{snapshot.total_active}</strong> live at the last successful poll, "
        f"{_utc(snapshot.taken_at)}.</p>"
    ]
    counts = sorted(
        ((count, browser) for browser, count in snapshot.active.items() if count),
        key=lambda item: (-item[0], item[1]),
    )
    if counts:
        rows = "\n".join(
            f'<tr><td>{_e(browser)}</td><td class="num">{count}</td></tr>'
            for count, browser in counts
        )
        lines.append(
            '<div class="scroll"><table>\n<caption class="muted">By browser type</caption>\n'
            '<thead><tr><th scope="col">Browser type</th>'
            '<th scope="col" class="num">Live</th></tr></thead>\n'
            f"<tbody>\n{rows}\n</tbody>\n</table></div>"
        )
    oldest = snapshot.oldest[:OLDEST_SHOWN]
    if oldest:
        rows = "\n".join(
            f"<tr><td><code>{_e(s.session_id)}</code></td><td>{_e(s.browser_type)}</td>"
            f"<td>{_e(s.status)}</td>"
            f'<td class="num">{_age((snapshot.taken_at - s.created_at).total_seconds())}</td>'
            f'<td class="num">{_age((snapshot.taken_at - s.last_accessed_at).total_seconds())}'
            "</td></tr>"
            for s in oldest
        )
        lines.append(
            '<div class="scroll"><table>\n'
            f'<caption class="muted">The {len(oldest)} oldest live sessions</caption>\n'
            '<thead><tr><th scope="col">Session</th><th scope="col">Browser</th>'
            '<th scope="col">Status</th><th scope="col" class="num">Age</th>'
            '<th scope="col" class="num">Idle for</th></tr></thead>\n'
            f"<tbody>\n{rows}\n</tbody>\n</table></div>"
        )
    elif detail_limit == 0:
        lines.append(
            '<p class="muted">Sessions are not shown one by one: --sessions.detail-limit is 0.</p>'
        )
    return "\n".join(lines)


def _polls(polls: Sequence[PollStatus]) -> str:
    if not polls:
        return "<p>No poll has finished yet.</p>"
    rows = []
    for poll in polls:
        if poll.ok:
            outcome = '<span class="ok">ok</span>'
        else:
            reason = poll.reason.value if poll.reason else "failed"
            outcome = (
                f'<span class="bad">{_e(reason)}</span><br>'
                f'<span class="muted">{_e(poll.message)}</span>'
            )
        sessions = "" if poll.sessions is None else str(poll.sessions)
        rows.append(
            f"<tr><td>{_utc(poll.finished_at)}</td>"
            f'<td class="num">{_poll_duration(poll.duration_seconds)}</td>'
            f'<td class="wrap">{outcome}</td>'
            f'<td class="num">{poll.requests}</td><td class="num">{sessions}</td></tr>'
        )
    body = "\n".join(rows)
    return (
        '<div class="scroll"><table>\n'
        f'<caption class="muted">The last {len(polls)}, newest first</caption>\n'
        '<thead><tr><th scope="col">Finished</th><th scope="col" class="num">Took</th>'
        '<th scope="col">Outcome</th><th scope="col" class="num">Requests</th>'
        '<th scope="col" class="num">Live sessions</th></tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def _reaper(reaper: ReaperView) -> str:
    mode = (
        '<span class="ok">dry run</span>: nothing is stopped; each session it would stop is '
        "logged and counted once (set <code>dry_run: false</code> to stop them)"
        if reaper.dry_run
        else '<span class="bad">live</span>: matching sessions are stopped'
    )
    facts = _definitions(
        [
            ("Policy file", f"<code>{_e(reaper.config_file)}</code>"),
            ("Mode", mode),
            (
                "Limits",
                _e(
                    f"{reaper.max_stops_per_poll} stops per poll, "
                    f"{reaper.max_stops_per_hour} per rolling hour"
                ),
            ),
            ("Excluded sessions", _e(reaper.excluded)),
        ]
    )
    rows = "\n".join(
        f"<tr><td><code>{_e(name)}</code></td><td>{_e(conditions)}</td><td>{_e(browsers)}</td>"
        f'<td class="num">{reaper.candidates.get(name, 0)}</td></tr>'
        for name, conditions, browsers in reaper.policies
    )
    policies = (
        '<div class="scroll"><table>\n<caption class="muted">Policies, in the order they '
        "are tried; a session is stopped once the same policy matched it at two polls in a "
        "row</caption>\n"
        '<thead><tr><th scope="col">Policy</th><th scope="col">Matches sessions</th>'
        '<th scope="col">Browser types</th><th scope="col" class="num">Match now</th></tr>'
        f"</thead>\n<tbody>\n{rows}\n</tbody>\n</table></div>"
    )
    if not reaper.actions:
        return f"{facts}\n{policies}\n<p>No action yet.</p>"
    actions = "\n".join(
        f"<tr><td>{_utc(action.at)}</td><td><code>{_e(action.session_id)}</code></td>"
        f"<td><code>{_e(action.policy)}</code></td>"
        f'<td class="{"bad" if action.result == "failed" else "ok"}">{_e(action.result)}'
        f"{'' if action.http_status is None else f' (HTTP {action.http_status})'}</td>"
        f"<td>{_e(action.browser_type)}</td>"
        f'<td class="num">{_age(action.age_seconds)}</td>'
        f'<td class="num">{_age(action.idle_seconds)}</td></tr>'
        for action in reaper.actions
    )
    return (
        f"{facts}\n{policies}\n"
        '<div class="scroll"><table>\n'
        f'<caption class="muted">The last {len(reaper.actions)} actions, newest first</caption>\n'
        '<thead><tr><th scope="col">When</th><th scope="col">Session</th>'
        '<th scope="col">Policy</th><th scope="col">Result</th><th scope="col">Browser</th>'
        '<th scope="col" class="num">Age</th><th scope="col" class="num">Idle for</th></tr>'
        f"</thead>\n<tbody>\n{actions}\n</tbody>\n</table></div>"
    )


def _definitions(pairs: Sequence[tuple[str, str]]) -> str:
    """A definition list; values must already be escaped."""
    items = "\n".join(f"<dt>{_e(term)}</dt><dd>{value}</dd>" for term, value in pairs)
    return f"<dl>\n{items}\n</dl>"


def _settings(view: StatusView) -> str:
    limit = "not set" if view.sessions_limit is None else str(view.sessions_limit)
    # With accounts, each one's section says its API, key source and plan limit.
    account = [
        ("Notte API", f"<code>{_e(view.api_url)}</code>"),
        ("API key from", _e(view.key_source)),
    ]
    polls = [
        ("Poll interval", _e(format_duration(view.poll_interval))),
        ("Poll timeout", _e(format_duration(view.poll_timeout))),
        ("Page size", _e(view.page_size)),
        ("Lookup budget", f"{_e(view.lookup_budget)} requests per poll"),
    ]
    if view.accounts:
        return _definitions(polls)
    return _definitions([*account, *polls, ("Plan limit", _e(limit))])


def _about(view: StatusView) -> str:
    uptime = _age((view.now - view.started_at).total_seconds())
    mode = (
        '<span class="bad">demo</span> (simulated data)'
        if view.demo
        else "live (a real Notte account)"
    )
    return _definitions(
        [
            ("Version", _e(view.version)),
            ("Python", _e(view.python_version)),
            ("Started", _e(_utc(view.started_at))),
            ("Uptime", _e(uptime)),
            ("Mode", mode),
        ]
    )


def _links(view: StatusView) -> str:
    links = [
        (view.telemetry_path, "Metrics", "what Prometheus scrapes: the last poll, rendered"),
        ("/healthz", "Health", "200 while the process runs (liveness)"),
        ("/readyz", "Readiness", "200 once a poll has succeeded (readiness)"),
        (DOCS_URL, "Documentation", "settings, metrics, alerts and deployment"),
    ]
    items = "\n".join(
        f'<li><a href="{_e(href)}">{_e(name)}</a>: {_e(text)}</li>' for href, name, text in links
    )
    return f'<ul class="links">\n{items}\n</ul>'
