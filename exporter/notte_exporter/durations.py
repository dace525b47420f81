"""The project's one duration syntax, for flags, the environment and the mixin's config.

Operators write durations the way Prometheus and Go programs taught them: ``30s``, ``1h30m``,
``500ms``, ``1.5s``, ``2h``, or plain seconds (``30``, ``2.5``). One grammar covers both: a
sign, then amounts with units from ``y`` down to ``ns``, each unit at most once and the
largest first (as Prometheus requires; ``1s1h`` is almost always a typo, so it is refused
everywhere rather than accepted by one parser and refused by another). A sign is parsed, not
refused, so that ``-5s`` reaches the setting's limit and earns "must be at least 0s" instead
of a puzzling syntax error.

``prometheus_duration`` is the same parser plus the restrictions of Prometheus's own (whole
amounts, no sign, no sub-millisecond units, a unit always): the mixin writes its durations
into PromQL and rule files, where anything more would be refused by Prometheus.

ISO 8601 durations from the Notte API are not parsed here: pydantic's ``timedelta`` reads them.
"""

from __future__ import annotations

import re

_UNITS = {
    "y": 31_536_000.0,
    "w": 604_800.0,
    "d": 86_400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
}
_RANK = {unit: rank for rank, unit in enumerate(_UNITS)}
_RANK["µs"] = _RANK["us"]
_AMOUNT = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_AMOUNT})(ns|us|µs|ms|s|m|h|d|w|y)")
_SIGNED = re.compile(rf"^(?P<sign>[-+]?)(?P<rest>{_AMOUNT}(?:[a-zµ]+{_AMOUNT})*[a-zµ]*)$")
_PLAIN_SECONDS = re.compile(rf"^{_AMOUNT}$")
_HINT = "use units like 30s, 1m30s, 1.5s, 500ms, 2h, or a number of seconds"


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus or Go duration, or in a plain number of seconds.

    Raises ValueError with a message fit to show an operator.
    """
    value = text.strip()
    match = _SIGNED.match(value)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: {_HINT}")
    sign = -1.0 if match["sign"] == "-" else 1.0
    rest = match["rest"]
    if _PLAIN_SECONDS.match(rest):
        return sign * float(rest)
    parts = _PART.findall(rest)
    if "".join(amount + unit for amount, unit in parts) != rest:
        raise ValueError(f"invalid duration {text!r}: {_HINT}")
    ranks = [_RANK[unit] for _, unit in parts]
    if ranks != sorted(set(ranks)):
        raise ValueError(
            f"invalid duration {text!r}: write each unit once, largest first (e.g. 1h30m)"
        )
    return sign * sum(float(amount) * _UNITS[unit] for amount, unit in parts)


def prometheus_duration(text: str) -> float:
    """Seconds in a duration that Prometheus itself accepts (for PromQL and rule files)."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = None
    parts = _PART.findall(text)
    if (
        seconds is None
        or not parts
        or text != text.strip()
        or text.startswith(("-", "+"))
        or any(not amount.isdigit() or unit in ("us", "µs", "ns") for amount, unit in parts)
    ):
        raise ValueError(
            f"not a Prometheus duration: {text!r} (whole amounts with units, e.g. 90s, 1h30m)"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """Render seconds the way operators write them (``90`` -> ``1m30s``) for help and logs."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if 0 < seconds < 1 and round(seconds * 1000, 6) == int(round(seconds * 1000, 6)):
        return f"{round(seconds * 1000)}ms"
    if seconds != int(seconds) or seconds == 0:
        return f"{seconds:g}s"
    remaining = int(seconds)
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        amount, remaining = divmod(remaining, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
