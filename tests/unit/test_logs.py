import json
import logging

from notte_exporter.logs import JsonFormatter, LogfmtFormatter, SecretFilter


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord(
        "notte_exporter.polling.poller", logging.WARNING, __file__, 1, message, (), None
    )


def test_logfmt_quotes_and_escapes_values_with_spaces_and_quotes() -> None:
    line = LogfmtFormatter().format(record('poll failed: said "no"'))
    assert line.startswith("ts=")
    assert " level=warning logger=notte_exporter.polling.poller " in line
    assert line.endswith('msg="poll failed: said \\"no\\""')


def test_logfmt_leaves_simple_values_bare() -> None:
    assert LogfmtFormatter().format(record("stopped")).endswith(" msg=stopped")


def test_json_lines_are_one_object_with_the_same_fields() -> None:
    fields = json.loads(JsonFormatter().format(record("a\nb")))
    assert set(fields) == {"ts", "level", "logger", "msg"}
    assert fields["msg"] == "a\nb"
    assert fields["ts"].endswith("Z")


def record_with_fields(message: str, fields: dict) -> logging.LogRecord:
    line = record(message)
    line.fields = fields
    return line


FIELDS = {"reason": "unauthorized", "duration_seconds": 0.25, "sessions": 3, "pages": 1,
          "requests": 2, "status": 401}  # fmt: skip


def test_logfmt_and_json_carry_the_same_structured_fields() -> None:
    logfmt = LogfmtFormatter().format(record_with_fields("poll failed", FIELDS))
    as_json = json.loads(JsonFormatter().format(record_with_fields("poll failed", FIELDS)))
    assert logfmt.endswith(
        'msg="poll failed" reason=unauthorized duration_seconds=0.25 sessions=3 pages=1 '
        "requests=2 status=401"
    )
    assert {key: as_json[key] for key in FIELDS} == FIELDS


def test_fields_cannot_override_the_lines_own() -> None:
    line = json.loads(JsonFormatter().format(record_with_fields("x", {"msg": "y", "level": 1})))
    assert line["msg"] == "x"
    assert line["level"] == "warning"


def test_field_values_are_redacted_too() -> None:
    line = record_with_fields("poll failed", {"reason": "said sk-secret"})
    SecretFilter(lambda text: text.replace("sk-secret", "<redacted>")).filter(line)
    assert line.fields["reason"] == "said <redacted>"
