"""Turning the text a member types for a `/server set` key into the value the model checks:
length and character limits, switches, numbers, durations, choices and lists.

Apart from the schema so each refusal here names the key and says what to type, before the
game's model has its say on the whole settings dict.
"""

from __future__ import annotations

import re
from typing import Any

from core.errors import InvalidInput
from core.parsing import MAX_DURATION, format_duration, parse_duration, parse_switch
from core.services.settings_errors import number_error
from core.services.settings_keys import Kind, SettingKey

__all__ = ["MAX_LIST_ITEMS", "MAX_VALUE_CHARS", "candidate", "clean_value", "parse_scalar"]

MAX_VALUE_CHARS = 1000
"""Longest raw value accepted for any key, before any parsing."""
MAX_LIST_ITEMS = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_INTEGER = re.compile(r"[+-]?[0-9]{1,15}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})")
_EMPTY_WORDS = frozenset({"none", "-"})


def clean_value(key: SettingKey, text: str) -> str:
    if len(text) > MAX_VALUE_CHARS:
        raise InvalidInput(
            "the value for {name} is too long (at most {MAX_VALUE_CHARS} characters)",
            name=key.name,
            MAX_VALUE_CHARS=MAX_VALUE_CHARS,
        )
    if _CONTROL.search(text):
        raise InvalidInput(
            "the value for {name} cannot contain line breaks or control characters", name=key.name
        )
    if _SURROGATE.search(text):  # not encodable: it would fail later, at encryption
        raise InvalidInput(
            "the value for {name} holds characters that are not valid text", name=key.name
        )
    raw = text.strip()
    if not raw:
        raise InvalidInput("give a value for {name}", name=key.name)
    return raw


def candidate(key: SettingKey, raw: str) -> Any:
    """What goes into the model for a game key (the model has the last word)."""
    if key.nullable and raw.lower() == "none":
        return None
    if key.kind is Kind.LIST:
        if raw.lower() in _EMPTY_WORDS:
            return []
        if key.model_splits:
            return raw
        items = [part.strip() for part in raw.split(key.separator) if part.strip()]
        if len(items) > MAX_LIST_ITEMS:
            raise InvalidInput(
                "{name} takes at most {MAX_LIST_ITEMS} entries",
                name=key.name,
                MAX_LIST_ITEMS=MAX_LIST_ITEMS,
            )
        if key.choices:
            items = [_choice(key, item) for item in items]
        return items
    return parse_scalar(key, raw)


def parse_scalar(key: SettingKey, raw: str) -> Any:
    if key.kind is Kind.SWITCH:
        try:
            return parse_switch(raw)
        except InvalidInput:
            raise InvalidInput("{name}: write `on` or `off`", name=key.name) from None
    if key.kind is Kind.DURATION:
        return _parse_duration(key, raw)
    if key.kind in (Kind.INTEGER, Kind.NUMBER):
        return _parse_number(key, raw)
    if key.kind is Kind.CHOICE:
        return _choice(key, raw)
    if key.max_length is not None and len(raw) > key.max_length:
        raise InvalidInput(
            "{name} is at most {max_length} characters long",
            name=key.name,
            max_length=key.max_length,
        )
    return raw


def _parse_number(key: SettingKey, raw: str) -> int | float:
    pattern = _INTEGER if key.integer else _NUMBER
    if not pattern.fullmatch(raw):
        raise number_error(key.name, integer=key.integer, low=key.minimum, high=key.maximum)
    value: int | float = int(raw) if key.integer else float(raw)
    if (key.minimum is not None and value < key.minimum) or (
        key.maximum is not None and value > key.maximum
    ):
        raise number_error(key.name, integer=key.integer, low=key.minimum, high=key.maximum)
    return value


def _parse_duration(key: SettingKey, raw: str) -> int | float | None:
    if key.allow_off and raw.lower() in ("off", "none", "0", "disabled"):
        return None if key.nullable else 0
    shortest = max(key.minimum or 0.0, 1.0)
    longest = key.maximum if key.maximum is not None else float(MAX_DURATION)
    if _INTEGER.fullmatch(raw):
        seconds = float(int(raw))
        if not shortest <= seconds <= longest:
            raise InvalidInput(
                "{name} must be between {shortest} and {longest}",
                name=key.name,
                shortest=format_duration(shortest),
                longest=format_duration(longest),
            )
    else:
        try:
            parsed = parse_duration(raw, allow_off=key.allow_off, minimum=shortest, maximum=longest)
        except InvalidInput as exc:
            raise InvalidInput("{name}: {exc}", name=key.name, exc=exc) from None
        seconds = 0.0 if parsed is None else parsed
    return int(seconds) if key.integer else seconds


def _choice(key: SettingKey, raw: str) -> str:
    for choice in key.choices:
        if choice.lower() == raw.lower():
            return choice
    raise InvalidInput(
        "{name} must be one of: {choices}", name=key.name, choices=", ".join(key.choices)
    )
