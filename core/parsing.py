"""Parsing of the small values users type: durations (`30m`, `12h`, `7d`, `perm`, `off`),
switches (`on`/`off`) and minute lists (`15,5,1`). One place, one set of error messages."""

from __future__ import annotations

import re

from core.errors import InvalidInput

__all__ = ["format_duration", "parse_duration", "parse_minutes_list", "parse_switch"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"([0-9]{1,7})\s*([smhdw])", re.IGNORECASE)
_PERMANENT = {"perm", "permanent", "forever", "never"}
_OFF = {"off", "none", "0", "disabled"}
MAX_DURATION = 10 * 365 * 86400


def parse_duration(
    text: str,
    *,
    allow_permanent: bool = False,
    allow_off: bool = False,
    minimum: float = 1,
    maximum: float = MAX_DURATION,
) -> float | None:
    """Seconds from `90s`, `30m`, `1h30m`, `7d`; None for `perm` / `off` where allowed."""
    value = text.strip().lower()
    if allow_permanent and value in _PERMANENT:
        return None
    if allow_off and value in _OFF:
        return 0.0
    if not value or len(value) > 32:
        raise _duration_error(allow_permanent, allow_off)
    pos = 0
    total = 0
    for match in _PART.finditer(value):
        if value[pos : match.start()].strip():
            raise _duration_error(allow_permanent, allow_off)
        total += int(match.group(1)) * _UNITS[match.group(2).lower()]
        pos = match.end()
    if pos == 0 or value[pos:].strip():
        raise _duration_error(allow_permanent, allow_off)
    if not minimum <= total <= maximum:
        raise InvalidInput(
            "the duration must be between {shortest} and {longest}",
            shortest=format_duration(minimum),
            longest=format_duration(maximum),
        )
    return float(total)


def _duration_error(allow_permanent: bool, allow_off: bool) -> InvalidInput:
    """What a duration looks like, naming only the words this caller accepts."""
    if allow_permanent and allow_off:
        return InvalidInput("write a duration like `30s`, `30m`, `12h`, `7d`, `perm`, `off`")
    if allow_permanent:
        return InvalidInput("write a duration like `30s`, `30m`, `12h`, `7d`, `perm`")
    if allow_off:
        return InvalidInput("write a duration like `30s`, `30m`, `12h`, `7d`, `off`")
    return InvalidInput("write a duration like `30s`, `30m`, `12h`, `7d`")


def format_duration(seconds: float) -> str:
    """`5400` -> `1h30m`; the inverse of parse_duration for whole seconds."""
    remaining = int(seconds)
    if remaining <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_switch(text: str) -> bool:
    value = text.strip().lower()
    if value in {"on", "true", "yes", "1", "enabled"}:
        return True
    if value in {"off", "false", "no", "0", "disabled"}:
        return False
    raise InvalidInput("write `on` or `off`")


def parse_minutes_list(text: str, *, maximum: int = 1440, most: int = 10) -> list[int]:
    """`15,5,1` -> [15, 5, 1] (distinct, descending); minutes before an event."""
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items or len(items) > most:
        raise InvalidInput(
            "write up to {most} minutes separated by commas, like `15,5,1`", most=most
        )
    minutes: set[int] = set()
    for item in items:
        if not (item.isascii() and item.isdigit()) or not 1 <= int(item) <= maximum:
            raise InvalidInput(
                "each warning must be a whole number of minutes, 1 to {maximum}", maximum=maximum
            )
        minutes.add(int(item))
    return sorted(minutes, reverse=True)
