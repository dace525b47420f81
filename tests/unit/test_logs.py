import json
import logging

from notte_exporter.logs import JsonFormatter, LogfmtFormatter


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord(
        "notte_exporter.poller", logging.WARNING, __file__, 1, message, (), None
    )


def test_logfmt_quotes_and_escapes_values_with_spaces_and_quotes() -> None:
    line = LogfmtFormatter().format(record('poll failed: said "no"'))
    assert line.startswith("ts=")
    assert " level=warning logger=notte_exporter.poller " in line
    assert line.endswith('msg="poll failed: said \\"no\\""')


def test_logfmt_leaves_simple_values_bare() -> None:
    assert LogfmtFormatter().format(record("stopped")).endswith(" msg=stopped")


def test_json_lines_are_one_object_with_the_same_fields() -> None:
    fields = json.loads(JsonFormatter().format(record("a\nb")))
    assert set(fields) == {"ts", "level", "logger", "msg"}
    assert fields["msg"] == "a\nb"
    assert fields["ts"].endswith("Z")
