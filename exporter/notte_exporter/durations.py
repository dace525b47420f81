"""Parsing of the two duration notations the exporter meets.

Operators write Prometheus-style durations (``30s``, ``1h30m``) or plain seconds in flags;
the Notte API sends ISO 8601 durations (``PT41.286072S``, ``P1DT5S``).
"""

from __future__ import annotations

import re
from datetime import timedelta

_PROMETHEUS_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
# Units must appear from largest to smallest, each at most once, as Prometheus requires.
_PROMETHEUS_DURATION = re.compile(
    r"^(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)
_PLAIN_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")

_ISO8601_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """Return the seconds in a Prometheus-style duration or a plain number of seconds.

    Raises ValueError with a message fit to show an operator.
    """
    value = text.strip()
    if _PLAIN_SECONDS.match(value):
        return float(value)
    match = _PROMETHEUS_DURATION.match(value)
    if not value or match is None or not any(match.groupdict().values()):
        raise ValueError(
            f"invalid duration {text!r}: use a number of seconds or units like 30s, 5m, 1h30m"
        )
    return sum(
        int(amount) * _PROMETHEUS_UNITS[unit]
        for unit, amount in match.groupdict().items()
        if amount is not None
    )


def format_duration(seconds: float) -> str:
    """Render seconds the way operators write them (``90`` -> ``1m30s``) for help and logs."""
    if seconds != int(seconds) or seconds == 0:
        return f"{seconds:g}s"
    remaining = int(seconds)
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        amount, remaining = divmod(remaining, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def parse_iso8601_duration(text: str) -> timedelta:
    """Parse the ISO 8601 durations Notte sends; years and months are refused as ambiguous."""
    match = _ISO8601_DURATION.match(text.strip())
    if match is None or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise ValueError(f"invalid ISO 8601 duration {text!r}")
    parts = {
        name: float(amount.replace(",", "."))
        for name, amount in match.groupdict().items()
        if amount is not None
    }
    return timedelta(**parts)
