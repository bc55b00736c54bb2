"""The `/server set` keys of a game: what each is, how a typed value is parsed, when it applies.

Keys come from two places: the game's settings model (its fields, their constraints and
validators) and the lifecycle keys every game shares (LifecyclePolicy). Every value a user
types is parsed here, then the whole resulting settings dict is validated through the model,
so a game's cross-field rule cannot be dodged one key at a time. The keys are built in
`core.services.settings_keys`, and a typed value is read in `core.services.settings_values`.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from core.errors import InvalidInput
from core.games.base import GameProfile
from core.parsing import format_duration
from core.services.audit import MASK
from core.services.settings_errors import explain, unknown_key
from core.services.settings_keys import (
    MAX_TEXT_CHARS,
    Effect,
    Kind,
    SettingKey,
    game_key,
    lifecycle_keys,
)
from core.services.settings_values import MAX_LIST_ITEMS, candidate, clean_value, parse_scalar
from core.supervisor.policy import LifecyclePolicy

__all__ = [
    "MASK",
    "NOT_SET",
    "ParsedSetting",
    "SettingsSchema",
    "schema_for",
]

NOT_SET = "(not set)"
_SAFE_KEY = re.compile(r"[a-z0-9_]{1,40}")
_CLEAR_SECRET = frozenset({"off", "none"})
"""Typed as the value of a secret key, these unset it (a server password, say)."""


@dataclass(frozen=True, slots=True)
class ParsedSetting:
    """A validated value in its stored (JSON) form; `value` is plain text for secrets,
    and None for a secret being unset."""

    key: SettingKey
    value: Any = field(repr=False)
    shown: str


# -- the schema -----------------------------------------------------------------------------


class SettingsSchema:
    """The keys of one game; build it with `schema_for(profile)`."""

    def __init__(self, game: str, model: type[BaseModel], secret_keys: frozenset[str]) -> None:
        self.game = game
        self.model = model
        self.secret_keys = secret_keys
        try:
            defaults = model().model_dump(mode="json")
        except ValidationError:
            defaults = {}
        keys: dict[str, SettingKey] = {}
        for name, info in model.model_fields.items():
            key = game_key(model, name, info, name in secret_keys, defaults.get(name))
            if key is not None:
                keys[name] = key
        for name in secret_keys - set(model.model_fields):  # a secret only the profile reads
            keys[name] = SettingKey(
                name=name,
                kind=Kind.TEXT,
                description="a password",
                secret=True,
                effect=Effect.NEXT_START,
                lifecycle=False,
                max_length=MAX_TEXT_CHARS,
            )
        keys.update(lifecycle_keys())  # a lifecycle key of the same name wins
        self._keys = dict(sorted(keys.items()))

    def list_keys(self, prefix: str = "") -> list[SettingKey]:
        """Keys whose name starts with (then contains) `prefix`, for autocomplete."""
        wanted = prefix.strip().lower().replace("-", "_")[:40]
        first = [k for k in self._keys.values() if k.name.startswith(wanted)]
        rest = [k for k in self._keys.values() if wanted in k.name and k not in first]
        return first + rest

    def key(self, name: str) -> SettingKey:
        wanted = name.strip().lower().replace("-", "_")
        found = self._keys.get(wanted)
        if found is not None:
            return found
        close = difflib.get_close_matches(wanted[:40], list(self._keys), n=4, cutoff=0.5)
        raise unknown_key(wanted if _SAFE_KEY.fullmatch(wanted) else None, self.game, close)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._keys

    def is_secret(self, name: str) -> bool:
        return self.key(name).secret

    def default(self, name: str) -> Any:
        return self.key(name).default

    # -- parsing ---------------------------------------------------------------------------

    def parse(self, name: str, text: str, current: Mapping[str, Any]) -> ParsedSetting:
        """Parse `text` for key `name`, then validate it with the rest of `current`.

        `current` holds the server's stored settings and its decrypted secrets.
        """
        key = self.key(name)
        raw = clean_value(key, text)
        if key.secret and raw.lower() in _CLEAR_SECRET:
            self._validate_model(key, None, current, clear=True)
            return ParsedSetting(key, None, NOT_SET)
        if key.lifecycle:
            value: Any = self._parse_lifecycle(key, raw, current)
            if key.name in self.model.model_fields:
                self._validate_model(key, value, current)
        elif key.name not in self.model.model_fields:
            value = candidate(key, raw)
        else:
            value = self._validate_model(key, candidate(key, raw), current)
            if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
                raise InvalidInput(
                    "{name} takes at most {MAX_LIST_ITEMS} entries",
                    name=key.name,
                    MAX_LIST_ITEMS=MAX_LIST_ITEMS,
                )
        return ParsedSetting(key, value, MASK if key.secret else self.display(key.name, value))

    def check(self, values: Mapping[str, Any]) -> None:
        """Validate a whole settings dict (e.g. a new server's defaults) through the model."""
        fields = {k: v for k, v in values.items() if k in self.model.model_fields}
        try:
            self.model.model_validate(fields)
        except ValidationError as exc:
            raise explain(None, exc, self._secret_values(values)) from None

    def _parse_lifecycle(self, key: SettingKey, raw: str, current: Mapping[str, Any]) -> Any:
        value = parse_scalar(key, raw)
        known = {k: v for k, v in current.items() if k in LifecyclePolicy.model_fields}
        known[key.name] = value
        try:
            LifecyclePolicy.model_validate(known)
        except ValidationError as exc:
            raise explain(key.name, exc, ()) from None
        return value

    def _validate_model(
        self, key: SettingKey, candidate: Any, current: Mapping[str, Any], *, clear: bool = False
    ) -> Any:
        """Validate the settings with the new value (or without it, when clearing)."""
        values = {k: v for k, v in current.items() if k in self.model.model_fields}
        if clear:
            values.pop(key.name, None)
        else:
            values[key.name] = candidate
        try:
            validated = self.model.model_validate(values)
        except ValidationError as exc:
            hide = self._secret_values(values)
            raise explain(key.name, exc, hide) from None
        result = getattr(validated, key.name)
        if isinstance(result, SecretStr):
            return result.get_secret_value()
        return validated.model_dump(mode="json", include={key.name})[key.name]

    def _secret_values(self, values: Mapping[str, Any]) -> list[str]:
        return [str(values[k]) for k in self.secret_keys if values.get(k)]

    # -- display ---------------------------------------------------------------------------

    def display(self, name: str, value: Any) -> str:
        """A stored value as a user reads it (never call this for a secret)."""
        key = self.key(name)
        if key.secret:
            return MASK
        if value is None:
            return "(none)"
        if key.kind is Kind.SWITCH:
            return "on" if value else "off"
        if key.kind is Kind.DURATION and isinstance(value, int | float):
            if value <= 0 and key.allow_off:
                return "off"
            if value != int(value) or value < 1:
                return f"{value:g}s"
            return format_duration(value)
        if key.kind is Kind.LIST and isinstance(value, list | tuple):
            return key.separator.join(str(v) for v in value) if value else "(none)"
        return str(value)


@functools.lru_cache(maxsize=64)
def _schema(game: str, model: type[BaseModel], secret_keys: frozenset[str]) -> SettingsSchema:
    return SettingsSchema(game, model, secret_keys)


def schema_for(profile: GameProfile) -> SettingsSchema:
    """The (cached) schema of a game profile."""
    return _schema(profile.name, profile.settings_model, frozenset(profile.secret_keys))
