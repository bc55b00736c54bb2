"""French, English and any language added as one file: command names and replies.

The English text in the code is the key (gettext's way): `bot/locales/<locale>.toml` maps
it to the translation, `[names]` for command, group and option names (Discord's rules for
names apply there) and `[text]` for everything else (descriptions, choices, replies, the
core's error templates). A language is added by adding its file, named by Discord's locale
code (`fr`, `de`, `pt-BR`...); `es-ES` falls back to `es` when only that file exists.
Missing strings fall back to English, so a partial file is never an error at run time;
tests prove the shipped ones complete.
"""

from __future__ import annotations

import logging
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

import discord
from discord import app_commands

from core.errors import LanguardError

__all__ = [
    "LOCALES_DIR",
    "Catalogue",
    "LanguardTranslator",
    "catalogue",
    "error_text",
    "guild_locale",
    "placeholders",
    "tr",
]

_log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).parent / "locales"

_NAME_LOCATIONS = frozenset(
    {
        app_commands.TranslationContextLocation.command_name,
        app_commands.TranslationContextLocation.group_name,
        app_commands.TranslationContextLocation.parameter_name,
    }
)


@dataclass(frozen=True)
class Language:
    """One locale file: names are kept apart because "status" the command and "status"
    the word may translate differently."""

    names: Mapping[str, str] = field(default_factory=dict)
    text: Mapping[str, str] = field(default_factory=dict)


def placeholders(template: str) -> frozenset[str]:
    """The `{name}` fields of a template, so a translation can be checked to keep them."""
    found = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None:
            found.add(name)
    return frozenset(found)


class Catalogue:
    """Every shipped language, read once; lookups never raise."""

    def __init__(self, languages: Mapping[str, Language]) -> None:
        self.languages = dict(languages)

    @classmethod
    def load(cls, folder: Path = LOCALES_DIR) -> Catalogue:
        languages: dict[str, Language] = {}
        for path in sorted(folder.glob("*.toml")):
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
            languages[path.stem] = Language(
                names={str(k): str(v) for k, v in raw.get("names", {}).items()},
                text={str(k): str(v) for k, v in raw.get("text", {}).items()},
            )
        return cls(languages)

    def language(self, locale: str | discord.Locale | None) -> Language | None:
        """The file for `locale`, its language's file (`es-ES` → `es`), or None (English)."""
        if locale is None:
            return None
        code = locale.value if isinstance(locale, discord.Locale) else str(locale)
        found = self.languages.get(code)
        if found is None and "-" in code:
            found = self.languages.get(code.split("-", 1)[0])
        return found

    def text(self, locale: str | discord.Locale | None, message: str) -> str | None:
        language = self.language(locale)
        return None if language is None else language.text.get(message)

    def name(self, locale: str | discord.Locale | None, message: str) -> str | None:
        language = self.language(locale)
        return None if language is None else language.names.get(message)


@cache
def catalogue() -> Catalogue:
    return Catalogue.load()


def tr(locale: str | discord.Locale | None, message: str, /, **params: object) -> str:
    """`message` in the reader's language (English when missing), with `params` filled in.

    A translation that names a field it is not given falls back to English instead of
    raising: a typo in a locale file must not break a command.
    """
    translated = catalogue().text(locale, message) or message
    if not params:
        return translated
    try:
        return translated.format(**params)
    except (KeyError, IndexError, ValueError):
        _log.warning("translation of %r for %s does not fit its fields", message, locale)
        return message.format(**params)


def error_text(locale: str | discord.Locale | None, error: LanguardError) -> str:
    """A core error's message in the reader's language: its template, translated, and any
    core error it wraps as a field (`"{name}: {exc}"`) translated the same way."""
    if not error.template:
        return str(error)
    return tr(locale, error.template, **{k: _field(locale, v) for k, v in error.params.items()})


def _field(locale: str | discord.Locale | None, value: object) -> object:
    """A field of a core error as the reader should see it: a wrapped core error translated,
    a fixed word (a `StrEnum` member such as a server state) translated, data as it is."""
    if isinstance(value, LanguardError):
        return error_text(locale, value)
    if isinstance(value, StrEnum):
        return tr(locale, value.value)
    return value


def guild_locale(client: discord.Client, channel_id: int | None) -> discord.Locale | None:
    """The language of posts in a channel everyone reads: its guild's preferred locale
    (Server Settings → Community → Server Primary Language); None (English) when unknown."""
    if channel_id is None:
        return None
    channel = client.get_channel(channel_id)
    guild = getattr(channel, "guild", None)
    return None if guild is None else guild.preferred_locale


class LanguardTranslator(app_commands.Translator):
    """Command names, descriptions and choices from the same files as the replies."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if context.location in _NAME_LOCATIONS:
            return catalogue().name(locale, string.message)
        return catalogue().text(locale, string.message)
