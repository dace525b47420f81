"""The status page as operators meet it: over HTTP from the running daemon, and in a browser.

The browser check takes a screenshot with headless Chromium (Debian's ``chromium``, which
make test installs), asserts from the rendered DOM that the page shows its text, and that the
PNG is not blank. Screenshots are kept in ``test-artefacts/`` (gitignored) for people to look
at: wide, phone-sized and dark.
"""

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import httpx
import pytest

from notte_exporter.simulator import Fault
from notte_exporter.web.statuspage import CONTENT_SECURITY_POLICY
from support import API_KEY

CHROMIUM = "/usr/bin/chromium"
ARTEFACTS = Path(__file__).parents[2] / "test-artefacts"
HOSTILE_ID = "<script>alert(1)</script>"


@pytest.fixture(params=["live", "demo"])
def running(request, api, account, make_exporter):
    """A daemon whose recent polls hold a failure and a recovery."""
    account.start_session(browser_type="chrome")
    account.start_session(browser_type="firefox")
    exporter = make_exporter(
        web_listen_address="127.0.0.1:0", sessions_limit=25, demo=request.param == "demo"
    )
    exporter.poll_once()
    api.faults.push(Fault.status(503, times=3))
    exporter.poll_once()
    url = exporter.start()
    assert exporter.state.wait_for_polls(3, timeout=10)
    return exporter, url.removesuffix("/metrics")


def test_the_page_is_html_under_a_strict_content_security_policy(running) -> None:
    _, base = running
    response = httpx.get(f"{base}/", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "Recent polls" in response.text


def test_the_page_never_shows_the_key_only_where_it_comes_from(running) -> None:
    exporter, base = running
    page = httpx.get(f"{base}/", timeout=5).text
    assert API_KEY not in page
    assert ("NOTTE_API_KEY" if exporter.mode == "live" else "simulator") in page


def test_hostile_session_ids_from_the_api_are_shown_not_run(account, make_exporter) -> None:
    account.start_session(browser_type="chrome", session_id=HOSTILE_ID)
    exporter = make_exporter(web_listen_address="127.0.0.1:0")
    base = exporter.start().removesuffix("/metrics")
    assert exporter.state.wait_for_polls(1, timeout=10)
    page = httpx.get(f"{base}/", timeout=5).text
    assert HOSTILE_ID not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: make test installs it")
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}", *args,
        ],
        capture_output=True,
        timeout=90,
        check=False,
    )  # fmt: skip


def png_distinct_bytes(png: bytes) -> int:
    """How many distinct byte values the decoded image data holds (1 means a blank page)."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    position, data = 8, b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        if kind == b"IDAT":
            data += png[position + 8 : position + 8 + length]
        position += 12 + length
    return len(set(zlib.decompress(data)))


@pytest.mark.chromium
def test_chromium_reads_the_page(running, tmp_path: Path) -> None:
    exporter, base = running
    dom = chromium(tmp_path, "--dump-dom", f"{base}/")
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    rendered = dom.stdout.decode()
    for words in ("Notte exporter", "Recent polls", "Live sessions", "chrome", "server_error"):
        assert words in rendered, words
    assert ("Demo mode" in rendered) == (exporter.mode == "demo")


@pytest.mark.chromium
@pytest.mark.parametrize(
    ("name", "flags"),
    [
        ("wide", ["--window-size=1280,1400"]),
        ("phone", ["--window-size=390,1400"]),
        ("dark", ["--window-size=1280,1400", "--force-dark-mode"]),
    ],
)
def test_chromium_renders_the_page(running, tmp_path: Path, name: str, flags: list[str]) -> None:
    exporter, base = running
    ARTEFACTS.mkdir(exist_ok=True)
    shot = ARTEFACTS / f"status-page-{exporter.mode}-{name}.png"
    shot.unlink(missing_ok=True)
    result = chromium(tmp_path, f"--screenshot={shot}", *flags, f"{base}/")
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    assert png_distinct_bytes(shot.read_bytes()) > 16


@pytest.mark.chromium
def test_chromium_is_the_debian_package() -> None:
    assert shutil.which("chromium") == CHROMIUM or Path(CHROMIUM).exists()
