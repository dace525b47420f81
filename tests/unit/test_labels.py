"""Free text from the API as label values: redacted, on one line, bounded in length."""

from notte_exporter.labels import LABEL_VALUE_LIMIT, text_label

KEY = "sk-test-7f3c9b2e1d4a"


def redact(text: str) -> str:
    return text.replace(KEY, "<redacted>")


def test_a_value_within_the_limit_is_kept_as_it_is() -> None:
    session_id = "2f0c1e8a-5d4b-4c3e-9a1f-0b6e7d8c9a10"
    assert text_label(session_id, redact) == session_id
    assert text_label("x" * LABEL_VALUE_LIMIT, redact) == "x" * LABEL_VALUE_LIMIT


def test_a_longer_value_is_cut_to_the_limit_and_says_so() -> None:
    value = text_label("x" * 1_000_000, redact)
    assert len(value) == LABEL_VALUE_LIMIT
    assert value.startswith("x" * 100)
    assert "\u2026" in value


def test_two_long_values_that_begin_alike_stay_two_values() -> None:
    first = text_label("x" * 200 + "a", redact)
    second = text_label("x" * 200 + "b", redact)
    assert first != second
    assert first == text_label("x" * 200 + "a", redact)


def test_a_key_across_the_cut_is_redacted_whole_before_the_cut() -> None:
    value = text_label("x" * (LABEL_VALUE_LIMIT - 30) + KEY + "y" * 500, redact)
    assert KEY[:8] not in value
    assert "<redacted>" in value


def test_free_text_is_kept_on_one_line() -> None:
    assert text_label("pro\n  plan\tMay 2026 ", redact) == "pro plan May 2026"
