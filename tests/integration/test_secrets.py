"""The API key never shows: not in logs, pages, metrics or error messages."""

import logging
import subprocess
import sys

import httpx
import pytest

from notte_exporter.logs import LogfmtFormatter, SecretFilter
from notte_exporter.simulator import Fault
from support import API_KEY


def test_the_key_appears_nowhere_an_operator_can_look(api, account, make_exporter, caplog):
    account.start_session()
    # An API that echoes the credentials back in an error is the worst case.
    api.faults.push(Fault.status(400, body={"message": f"bad token {API_KEY}"}))
    exporter = make_exporter(web_listen_address="127.0.0.1:0", notte_retries=0)
    with caplog.at_level(logging.DEBUG):
        url = exporter.start()
        assert exporter.state.wait_for_polls(1, timeout=10)
        pages = [httpx.get(url.replace("/metrics", path)).text for path in
                 ("/", "/metrics", "/healthz", "/readyz")]  # fmt: skip
        failed = exporter.state.last_poll
        exporter.poll_once()
        pages.append(httpx.get(url).text)
    assert failed is not None
    assert "<redacted>" in failed.message
    everything = "\n".join([*pages, caplog.text, failed.message, repr(exporter.settings)])
    assert API_KEY not in everything


@pytest.mark.slow
def test_there_is_no_flag_that_takes_the_key_itself() -> None:
    # There is no flag that takes the key itself: ps would show it to every local user.
    result = subprocess.run(
        [sys.executable, "-m", "notte_exporter", "--notte.api-key", API_KEY, "--once"],
        capture_output=True, text=True, check=False, env={"PATH": "/usr/bin"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
    assert API_KEY not in result.stderr


def test_the_log_filter_redacts_a_key_that_slipped_into_a_message() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "auth %s failed", (API_KEY,), None)
    SecretFilter(lambda text: text.replace(API_KEY, "<redacted>")).filter(record)
    assert API_KEY not in LogfmtFormatter().format(record)
    assert "<redacted>" in LogfmtFormatter().format(record)


def test_the_log_filter_redacts_tracebacks_too() -> None:
    try:
        raise RuntimeError(f"header Bearer {API_KEY}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    SecretFilter(lambda text: text.replace(API_KEY, "<redacted>")).filter(record)
    line = LogfmtFormatter().format(record)
    assert "RuntimeError" in line
    assert API_KEY not in line


def test_settings_never_render_the_key(make_exporter) -> None:
    exporter = make_exporter()
    assert API_KEY not in repr(exporter.settings)
    assert API_KEY not in str(exporter.settings)


def test_a_usage_error_that_echoes_the_key_is_redacted(api, make_exporter, caplog) -> None:
    api.faults.push(Fault.status(403, body={"message": f"token {API_KEY} may not"}, path="/usage"))
    exporter = make_exporter(collector_usage=True)
    with caplog.at_level(logging.DEBUG):
        exporter.poll_once()
    assert "cannot read usage" in caplog.text
    assert "<redacted>" in caplog.text
    assert API_KEY not in caplog.text + exporter.exposition().decode()
