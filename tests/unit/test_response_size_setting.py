"""--notte.max-response-bytes: written as operators write sizes, refused with what to write."""

import pytest

from notte_exporter.settings import SettingsError, load_settings


def test_the_cap_defaults_to_8_mib() -> None:
    assert load_settings({"demo": True}).notte_max_response_bytes == 8 * 1024**2


@pytest.mark.parametrize(
    ("written", "size"),
    [("16MiB", 16 * 1024**2), ("2 mib", 2 * 1024**2), ("10MB", 10_000_000), ("1048576", 1024**2)],
)
def test_the_cap_takes_sizes_with_units(
    monkeypatch: pytest.MonkeyPatch, written: str, size: int
) -> None:
    monkeypatch.setenv("NOTTE_EXPORTER_NOTTE_MAX_RESPONSE_BYTES", written)
    assert load_settings({"demo": True}).notte_max_response_bytes == size


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("lots", "'lots' is not a size such as 8MiB, 16MiB or 10000000 (bytes)"),
        ("64KiB", "must be between 1.0MiB and 256.0MiB, got 64.0KiB"),
        ("1GiB", "must be between 1.0MiB and 256.0MiB, got 1.0GiB"),
    ],
)
def test_a_cap_that_is_no_size_or_out_of_range_says_what_to_write(
    written: str, problem: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"demo": True, "notte_max_response_bytes": written})
    assert caught.value.problems == [
        f"--notte.max-response-bytes (NOTTE_EXPORTER_NOTTE_MAX_RESPONSE_BYTES): {problem}"
    ]
