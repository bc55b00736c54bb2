"""Discord's checks on the translations sent with application commands.

Real Discord refuses a registration (400, code 50035 "Invalid Form Body") when a
`name_localizations` / `description_localizations` dictionary has a key that is not one of
its locales, a localized name that breaks the naming rule, or a localized description
outside 1-100 characters. discord.py checks none of this (it validates only the default
name), so without these checks a bad locale file would pass here and fail in production.

Sources: [D2] docs.discord.com/developers/interactions/application-commands, "Application
Command Naming" and "Localization": the same regex for localized names as for names,
`^[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`, lower case wherever a lower-case form
exists; descriptions 1-100; keys from the Locales table. [D4] discord/discord-api-docs
issue #7712: a bad localized name of a command is reported at `N.name_localizations`
without naming the locale, while for options the error names it
(`N.options.M.name_localizations.ru`). (See /work/shared/reference/discord.md.)
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .errors import invalid_form

__all__ = ["DISCORD_LOCALES", "check_localizations", "valid_name"]

DISCORD_LOCALES = frozenset(
    {
        "id",
        "da",
        "de",
        "en-GB",
        "en-US",
        "es-ES",
        "es-419",
        "fr",
        "hr",
        "it",
        "lt",
        "hu",
        "nl",
        "no",
        "pl",
        "pt-BR",
        "ro",
        "fi",
        "sv-SE",
        "vi",
        "tr",
        "cs",
        "el",
        "bg",
        "ru",
        "uk",
        "hi",
        "th",
        "zh-CN",
        "ja",
        "zh-TW",
        "ko",
    }
)
"""The Locales table of [D2] (32 codes; French is plain `fr`, there is no plain `en`)."""

INVALID_NAME = "APPLICATION_COMMAND_INVALID_NAME"
_SCRIPT_RANGES = ((0x0900, 0x097F), (0xA8E0, 0xA8FF), (0x0E00, 0x0E7F))
"""Devanagari, Devanagari Extended and Thai: their vowel signs are marks, not letters."""


def _name_char(ch: str) -> bool:
    if ch in "-_'":
        return True
    if unicodedata.category(ch)[0] in "LN":  # \p{L}, \p{N}
        return True
    return any(low <= ord(ch) <= high for low, high in _SCRIPT_RANGES)


def valid_name(name: str) -> bool:
    """The chat-command naming rule of [D2], for names and localized names alike."""
    return 1 <= len(name) <= 32 and all(map(_name_char, name)) and name == name.lower()


def _as_dict(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:  # absent or null: no translations
        return {}
    if not isinstance(value, dict):
        raise invalid_form(f"{where}.{key}", "Must be a dictionary.", "DICT_TYPE_CONVERT")
    return value


def _check_keys(found: dict[str, Any], where: str) -> None:
    for locale in found:
        if locale not in DISCORD_LOCALES:
            raise invalid_form(
                f"{where}.{locale}",
                f"Value must be one of {sorted(DISCORD_LOCALES)}.",
                "BASE_TYPE_CHOICES",
            )


def check_localizations(
    data: dict[str, Any], where: str, *, name_rule: bool, top_level: bool = False
) -> None:
    """Raise Discord's 400 50035 for a bad `name_localizations` / `description_localizations`
    of a command, option or choice (`name_rule`: names of commands and options follow the
    naming regex; choice names are any text of 1-100)."""
    names = _as_dict(data, "name_localizations", where)
    _check_keys(names, f"{where}.name_localizations")
    for locale, text in names.items():
        text = str(text)
        good = valid_name(text) if name_rule else 1 <= len(text) <= 100
        if good:
            continue
        if not name_rule:
            raise invalid_form(
                f"{where}.name_localizations.{locale}",
                "Must be between 1 and 100 in length.",
                "BASE_TYPE_BAD_LENGTH",
            )
        # a command's own name: the error does not say which locale [D4]
        path = f"{where}.name_localizations" + ("" if top_level else f".{locale}")
        raise invalid_form(path, "Command name is invalid", INVALID_NAME)
    descriptions = _as_dict(data, "description_localizations", where)
    _check_keys(descriptions, f"{where}.description_localizations")
    for locale, text in descriptions.items():
        if not 1 <= len(str(text)) <= 100:
            raise invalid_form(
                f"{where}.description_localizations.{locale}",
                "Must be between 1 and 100 in length.",
                "BASE_TYPE_BAD_LENGTH",
            )
