"""The status page as a pure function of what it shows: content, escaping, validity, CSP."""

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import html5lib
import pytest

from notte_exporter.errors import FailureReason
from notte_exporter.polling.snapshot import SessionDetail, Snapshot
from notte_exporter.polling.state import RECENT_POLLS, ExporterState, PollStatus
from notte_exporter.web.statuspage import (
    CONTENT_SECURITY_POLICY,
    AccountView,
    KeyRow,
    ReaperAction,
    ReaperView,
    StatusView,
    render,
)

NOW = datetime(2026, 11, 29, 7, 40, 11, 883276, tzinfo=UTC)
TAKEN = NOW - timedelta(seconds=5)
HOSTILE_ID = '<script>alert("id")</script>'
HOSTILE_BROWSER = '"><img src=x onerror=alert(1)>'
HOSTILE_URL = "https://api.example.com/?token=<b>x</b>"


def snapshot(**overrides) -> Snapshot:
    values = {
        "taken_at": TAKEN,
        "active": {"chromium": 3, "firefox": 1, "chrome": 0},
        "request_bytes": {}, "response_bytes": {}, "with_error": {}, "idle": {},
        "with_feature": {}, "overdue": {},
        "oldest_created_at": NOW - timedelta(hours=2),
        "oldest": (
            SessionDetail("s-old", "chromium", "active", TAKEN - timedelta(hours=2, minutes=5),
                          TAKEN - timedelta(minutes=3)),
            SessionDetail("s-new", "firefox", "active", TAKEN - timedelta(minutes=4),
                          TAKEN - timedelta(seconds=10)),
        ),
    }  # fmt: skip
    values.update(overrides)
    return Snapshot(**values)


def ok_poll(seconds_ago: float = 5, sessions: int = 4) -> PollStatus:
    return PollStatus(
        ok=True, finished_at=NOW - timedelta(seconds=seconds_ago), duration_seconds=0.0042,
        sessions=sessions, pages=1, requests=2, http_status=200,
    )  # fmt: skip


def failed_poll(message: str = "GET /sessions answered 401: Invalid token") -> PollStatus:
    return PollStatus(
        ok=False, finished_at=NOW - timedelta(seconds=35), duration_seconds=1.5,
        reason=FailureReason.UNAUTHORIZED, message=message, advice="check the key", requests=1,
        http_status=401,
    )  # fmt: skip


def view(**overrides) -> StatusView:
    values = {
        "version": "0.1.0", "python_version": "3.11.7", "started_at": NOW - timedelta(hours=26),
        "now": NOW, "demo": False, "telemetry_path": "/metrics",
        "api_url": "https://api.notte.cc", "key_source": "NOTTE_API_KEY",
        "poll_interval": 30.0, "poll_timeout": 24.0, "page_size": 100, "lookup_budget": 10,
        "sessions_limit": 25, "detail_limit": 20, "polls": [ok_poll(), failed_poll()],
        "snapshot": snapshot(),
    }  # fmt: skip
    values.update(overrides)
    return StatusView(**values)


def text_of(page: str) -> str:
    """The page's visible text, as a reader would see it (tags dropped, spaces collapsed)."""

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.skip = False

        def handle_starttag(self, tag, attrs) -> None:
            self.skip = tag in ("style", "title")
            if tag in BLOCKS:
                self.parts.append(" ")

        def handle_endtag(self, tag) -> None:
            self.skip = False

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(page)
    return re.sub(r"\s+", " ", "".join(parser.parts))


BLOCKS = {"p", "li", "dt", "dd", "td", "th", "tr", "h1", "h2", "caption", "br", "section"}


def assert_valid_html(page: str) -> None:
    """Parses under the WHATWG rules in strict mode: any parse error fails."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    parser.parse(page)
    assert page.startswith("<!DOCTYPE html>")


def test_the_page_is_valid_html() -> None:
    assert_valid_html(render(view()))


@pytest.mark.parametrize(
    "overrides",
    [{"polls": [], "snapshot": None}, {"demo": True}, {"detail_limit": 0, "snapshot": snapshot(
        oldest=())}, {"sessions_limit": None}, {"polls": [failed_poll()]}],
)  # fmt: skip
def test_every_variant_of_the_page_is_valid_html(overrides: dict) -> None:
    assert_valid_html(render(view(**overrides)))


def test_it_says_what_runs() -> None:
    text = text_of(render(view()))
    for words in (
        "Version 0.1.0", "Python 3.11.7", "Started 2026-11-28 05:40:11 UTC", "Uptime 1d 2h",
        "Mode live",
    ):  # fmt: skip
        assert words in text, words


def test_it_shows_the_settings_that_matter_and_where_the_key_comes_from() -> None:
    text = text_of(render(view(key_source="--notte.api-key-file '/var/run/secrets/key'")))
    for words in (
        "Notte API https://api.notte.cc",
        "API key from --notte.api-key-file '/var/run/secrets/key'",
        "Poll interval 30s", "Poll timeout 24s", "Page size 100",
        "Lookup budget 10 requests per poll", "Plan limit 25",
    ):  # fmt: skip
        assert words in text, words


def test_recent_polls_show_time_duration_outcome_requests_and_sessions() -> None:
    text = text_of(render(view()))
    assert "2026-11-29 07:40:06 UTC 4 ms ok 2 4" in text
    assert "2026-11-29 07:39:36 UTC 1.50 s unauthorized GET /sessions answered 401" in text


def test_live_sessions_by_browser_type_and_the_oldest_with_their_age() -> None:
    text = text_of(render(view()))
    assert "4 live at the last successful poll" in text
    assert "chromium 3 firefox 1" in text
    assert "chrome 0" not in text
    assert "s-old chromium active 2h 5m 3m 0s" in text
    assert "s-new firefox active 4m 0s 10s" in text


def test_links_to_every_endpoint_with_a_description() -> None:
    page = render(view(telemetry_path="/custom-metrics"))
    for href in ("/custom-metrics", "/healthz", "/readyz"):
        assert f'href="{href}"' in page
    assert "Metrics: what Prometheus scrapes" in text_of(page)
    assert "Documentation:" in text_of(page)


def test_demo_mode_is_unmistakable() -> None:
    page = render(view(demo=True))
    assert 'class="banner"' in page
    assert "Demo mode: every number here" in text_of(page)
    assert "Mode demo (simulated data)" in text_of(page)
    assert "<title>Notte exporter (demo)</title>" in page


def test_live_mode_has_no_banner() -> None:
    assert 'class="banner"' not in render(view())


def test_before_the_first_poll_the_page_says_so() -> None:
    text = text_of(render(view(polls=[], snapshot=None)))
    assert "waiting for the first poll" in text
    assert "No poll has finished yet." in text


def test_everything_from_the_api_and_the_settings_is_escaped() -> None:
    hostile = snapshot(
        active={HOSTILE_BROWSER: 1},
        oldest=(SessionDetail(HOSTILE_ID, HOSTILE_BROWSER, "<b>", NOW, NOW),),
    )
    page = render(
        view(
            snapshot=hostile,
            api_url=HOSTILE_URL,
            telemetry_path='/m"><script>x</script>',
            key_source="--notte.api-key-file '<i>/k</i>'",
            polls=[failed_poll(message="<script>alert('msg')</script>")],
        )
    )
    assert "<script" not in page
    assert "<img" not in page
    assert "<b>" not in page
    assert "<i>" not in page
    assert html_escaped(HOSTILE_ID) in page
    assert HOSTILE_ID in text_of(page)
    assert_valid_html(page)


def html_escaped(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def test_no_script_and_no_external_asset() -> None:
    page = render(view(demo=True))
    assert "<script" not in page
    assert " src=" not in page
    assert "<link" not in page
    assert "@import" not in page
    assert "url(" not in page


def test_the_csp_allows_exactly_the_inline_stylesheet() -> None:
    page = render(view())
    [style] = re.findall(r"<style>(.*?)</style>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY  # falls back on default-src 'none'


def test_readable_on_a_phone_and_in_dark_mode() -> None:
    page = render(view())
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media (prefers-color-scheme: dark)" in page
    assert '<meta name="color-scheme" content="light dark">' in page
    assert page.count('<div class="scroll"><table>') == 3  # wide tables scroll in their box


def test_the_state_keeps_only_the_last_polls_newest_first() -> None:
    state = ExporterState()
    for second in range(RECENT_POLLS + 5):
        state.record_failure(failed_poll(message=f"poll {second}"))
    recent = state.recent_polls
    assert len(recent) == RECENT_POLLS == 20
    assert recent[0].message == f"poll {RECENT_POLLS + 4}"
    assert recent[-1].message == "poll 5"


# --- The Reaper section (issue 21) ---------------------------------------------------


def reaper(**overrides) -> ReaperView:
    values = {
        "config_file": "/etc/notte-exporter/reaper/<b>reaper.yaml",
        "dry_run": False, "max_stops_per_poll": 5, "max_stops_per_hour": 60, "excluded": 2,
        "policies": (("idle-10m", "idle longer than 10m", "every type"),
                     ("old-chrome", "older than 2h", "chrome, chromium")),
        "candidates": {"idle-10m": 3},
        "actions": (
            ReaperAction(NOW - timedelta(seconds=5), HOSTILE_ID, "idle-10m", "failed",
                         "chromium", 2700, 2400, 503),
            ReaperAction(NOW - timedelta(seconds=35), "s-1", "idle-10m", "stopped", "firefox",
                         1800, 900),
        ),
    }  # fmt: skip
    values.update(overrides)
    return ReaperView(**values)


@pytest.mark.parametrize("overrides", [{}, {"dry_run": True, "actions": ()}])
def test_the_page_with_a_reaper_is_valid_html(overrides: dict) -> None:
    assert_valid_html(render(view(reaper=reaper(**overrides))))


def test_the_section_shows_the_mode_limits_and_policies() -> None:
    text = text_of(render(view(reaper=reaper())))
    for words in (
        "Mode live: matching sessions are stopped",
        "Limits 5 stops per poll, 60 per rolling hour",
        "Excluded sessions 2",
        "idle-10m idle longer than 10m every type 3",
        "old-chrome older than 2h chrome, chromium 0",
    ):
        assert words in text, words


def test_the_section_lists_the_last_actions_newest_first_with_the_status_of_a_failure() -> None:
    text = text_of(render(view(reaper=reaper())))
    assert "failed (HTTP 503) chromium 45m 0s 40m 0s" in text
    assert text.index(HOSTILE_ID) < text.index("s-1")
    assert "stopped firefox 30m 0s 15m 0s" in text


def test_a_dry_run_says_nothing_is_stopped() -> None:
    text = text_of(render(view(reaper=reaper(dry_run=True, actions=()))))
    assert "Mode dry run: nothing is stopped" in text
    assert "No action yet." in text


def test_values_from_the_api_and_the_file_are_shown_not_run() -> None:
    page = render(view(reaper=reaper()))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;reaper.yaml" in page


def test_without_a_reaper_the_page_has_no_reaper_section() -> None:
    assert "Reaper" not in text_of(render(view()))


def accounts_view() -> StatusView:
    keys = (
        KeyRow("checkout-agent", live_sessions=3, up=True, last_poll=TAKEN),
        KeyRow("crawler", live_sessions=None, up=False, last_poll=TAKEN),
        KeyRow("new-key", live_sessions=None, up=None, last_poll=None),
    )
    return view(
        accounts=(
            AccountView("prod", "https://api.notte.cc", "/etc/notte/prod/key", 100,
                        polls=[ok_poll()], snapshot=snapshot(), keys=keys),
            AccountView("staging", HOSTILE_URL, "/etc/notte/staging/key", None,
                        polls=[failed_poll()]),
        ),
    )  # fmt: skip


def test_each_account_has_a_section_with_its_keys() -> None:
    page = render(accounts_view())
    prod, staging = page.split("<h2>Account prod</h2>")[1].split("<h2>Account staging</h2>")
    assert "checkout-agent" in prod
    assert "crawler" in prod
    assert "not listed yet" in prod
    assert "checkout-agent" not in staging
    assert "No named keys" in staging
    assert "1 of 2 accounts up" in page
    # The one account's sections give way to the accounts'.
    assert "<h2>Live sessions</h2>" not in page
    assert "<h2>Recent polls</h2>" not in page


def test_the_page_with_accounts_is_valid_html_and_escapes_their_values() -> None:
    page = render(accounts_view())
    assert_valid_html(page)
    assert "<b>x</b>" not in page
