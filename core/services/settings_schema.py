"""The `/server set` keys of a game: what each is, how a typed value is parsed, when it applies.

Keys come from two places: the game's settings model (its fields, their constraints and
validators) and the lifecycle keys every game shares (LifecyclePolicy). Every value a user
types is parsed here, then the whole resulting settings dict is validated through the model,
so a game's cross-field rule cannot be dodged one key at a time.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from core.errors import InvalidInput
from core.games.base import GameProfile
from core.parsing import MAX_DURATION, format_duration, parse_duration, parse_switch
from core.services.audit import MASK
from core.services.settings_errors import explain, number_error, unknown_key
from core.supervisor.policy import LifecyclePolicy

__all__ = [
    "MASK",
    "NOT_SET",
    "Effect",
    "Kind",
    "ParsedSetting",
    "SettingKey",
    "SettingsSchema",
    "schema_for",
]

NOT_SET = "(not set)"
MAX_VALUE_CHARS = 1000
"""Longest raw value accepted for any key, before any parsing."""
MAX_TEXT_CHARS = 256
"""Longest text value when the model sets no max_length of its own."""
MAX_LIST_ITEMS = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_INTEGER = re.compile(r"[+-]?[0-9]{1,15}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})")
_SAFE_KEY = re.compile(r"[a-z0-9_]{1,40}")
_SECONDS_SUFFIXES = ("_interval", "_timeout", "_window", "_delay")
_EMPTY_WORDS = frozenset({"none", "-"})
_CLEAR_SECRET = frozenset({"off", "none"})
"""Typed as the value of a secret key, these unset it (a server password, say)."""
_SEPARATORS = (";", "|", ",")


class Kind(StrEnum):
    SWITCH = "switch"
    INTEGER = "integer"
    NUMBER = "number"
    DURATION = "duration"
    TEXT = "text"
    CHOICE = "choice"
    LIST = "list"


class Effect(StrEnum):
    """When a saved value is used: game keys are read at start, lifecycle keys every time."""

    NOW = "at once"
    NEXT_START = "at the next start"


@dataclass(frozen=True, slots=True)
class SettingKey:
    """One settable key; `description` is short enough for an autocomplete choice."""

    name: str
    kind: Kind
    description: str
    secret: bool
    effect: Effect
    lifecycle: bool
    default: Any = field(repr=False, default=None)
    minimum: float | None = field(repr=False, default=None)
    maximum: float | None = field(repr=False, default=None)
    integer: bool = field(repr=False, default=False)
    nullable: bool = field(repr=False, default=False)
    allow_off: bool = field(repr=False, default=False)
    max_length: int | None = field(repr=False, default=None)
    choices: tuple[str, ...] = field(repr=False, default=())
    separator: str = field(repr=False, default=";")
    model_splits: bool = field(repr=False, default=False)
    """True when the game's model turns the raw `a;b` string into a list itself."""
    multiline: bool = field(repr=False, default=False)
    """True for a list of free-text lines (`motd`): a front end may offer one line per entry
    (a form's paragraph box) and join them with `separator`. A field sets it with
    `json_schema_extra={"multiline": True}`; a text list split on `|` is lines by default."""


@dataclass(frozen=True, slots=True)
class ParsedSetting:
    """A validated value in its stored (JSON) form; `value` is plain text for secrets,
    and None for a secret being unset."""

    key: SettingKey
    value: Any = field(repr=False)
    shown: str


# -- building the key registry -------------------------------------------------------------


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _bounds(info: FieldInfo) -> tuple[float | None, float | None, bool, int | None]:
    """(minimum, maximum, minimum is exclusive, max_length) from a field's constraints."""
    low: float | None = None
    high: float | None = None
    exclusive = False
    max_length: int | None = None
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            low = float(item.ge)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Gt):
            low, exclusive = float(item.gt), True  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Le):
            high = float(item.le)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Lt):
            high = float(item.lt) - 1e-9  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.MaxLen):
            max_length = int(item.max_length)
    return low, high, exclusive, max_length


def _choices(annotation: Any) -> tuple[str, ...]:
    if get_origin(annotation) is Literal:
        return tuple(str(a.value if isinstance(a, Enum) else a) for a in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return tuple(str(member.value) for member in annotation)
    return ()


def _is_scalar(annotation: Any) -> bool:
    return annotation in (str, int, float) or bool(_choices(annotation))


def _list_item(annotation: Any) -> Any | None:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (list, set, frozenset) and len(args) == 1:
        return args[0]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return None


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def _detect_separator(model: type[BaseModel], name: str) -> str | None:
    """The separator the model's own validator splits a string on, if it has one."""
    for sep in _SEPARATORS:
        try:
            value = getattr(model.model_validate({name: f"a1{sep}b2"}), name)
        except ValidationError:
            continue
        if isinstance(value, list | tuple | set | frozenset) and len(value) == 2:
            return sep
    return None


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {low:g} to {high:g}"
    if low is not None:
        return f"at least {low:g}"
    if high is not None:
        return f"at most {high:g}"
    return ""


def _game_key(
    model: type[BaseModel], name: str, info: FieldInfo, secret: bool, default: Any
) -> SettingKey | None:
    annotation, nullable = _unwrap_optional(info.annotation)
    low, high, exclusive, max_length = _bounds(info)
    extra = _extra(info)
    common: dict[str, Any] = {
        "name": name,
        "secret": secret,
        "effect": Effect.NEXT_START,
        "lifecycle": False,
        "default": default,
        "nullable": nullable,
    }
    hint: str
    if annotation is bool:
        kind, hint = Kind.SWITCH, "on or off"
    elif annotation in (int, float):
        integer = annotation is int
        if exclusive and low is not None:
            low = low + 1 if integer else low
        common.update(minimum=low, maximum=high, integer=integer)
        if extra.get("unit") in ("s", "seconds") or name.endswith(_SECONDS_SUFFIXES):
            kind, hint = Kind.DURATION, "a duration like 30s or 5m"
            common["allow_off"] = nullable or (not exclusive and (low is None or low <= 0))
        else:
            kind = Kind.INTEGER if integer else Kind.NUMBER
            what = "a whole number" if integer else "a number"
            hint = f"{what} {_range_text(low, high)}".strip()
    elif annotation in (str, SecretStr):
        kind, hint = Kind.TEXT, "a password" if secret else "text"
        common["max_length"] = max_length or MAX_TEXT_CHARS
    elif choices := _choices(annotation):
        kind, hint = Kind.CHOICE, "one of " + ", ".join(choices)
        common["choices"] = choices
    elif (item := _list_item(annotation)) is not None and _is_scalar(item):
        kind = Kind.LIST
        explicit = extra.get("separator")
        detected = explicit if isinstance(explicit, str) else _detect_separator(model, name)
        separator = detected or ";"
        common.update(
            separator=separator, model_splits=detected is not None, choices=_choices(item)
        )
        hint = f"a list separated by `{separator}`"
        multiline = extra.get("multiline")
        common["multiline"] = (
            multiline
            if isinstance(multiline, bool)
            else separator == "|" and not common["choices"] and item is str
        )
        if common["choices"]:
            hint += " from " + ", ".join(common["choices"])
    else:
        return None  # a structured value only the bot itself sets
    # members read it in the autocomplete, translated: a game field gives a literal description
    # (tests check each has a translation); the hint is a fallback for a model of a test
    description = info.description or hint
    return SettingKey(kind=kind, description=description[:100], **common)


_LIFECYCLE: dict[str, tuple[Kind, str, float | None]] = {
    "auto_restart": (Kind.SWITCH, "restart after a crash (on/off)", None),
    "max_crashes": (Kind.INTEGER, "crashes within crash_window before giving up", None),
    "crash_window": (Kind.DURATION, "window for counting crashes, like 10m", 1.0),
    "stop_timeout": (Kind.DURATION, "time a graceful stop may take, like 30s", 1.0),
    "liveness_interval": (Kind.DURATION, "time between liveness probes, like 30s, or off", 5.0),
}
"""The every-game keys: kind, description, and the shortest duration a user may set."""


def _lifecycle_keys() -> dict[str, SettingKey]:
    defaults = LifecyclePolicy().model_dump(mode="json")
    keys: dict[str, SettingKey] = {}
    for name, (kind, description, shortest) in _LIFECYCLE.items():
        low, high, exclusive, _ = _bounds(LifecyclePolicy.model_fields[name])
        allow_off = kind is Kind.DURATION and low is not None and low <= 0 and not exclusive
        if shortest is not None:
            low = max(low or 0.0, shortest)
        keys[name] = SettingKey(
            name=name,
            kind=kind,
            description=description,
            secret=False,
            effect=Effect.NOW,
            lifecycle=True,
            default=defaults[name],
            minimum=low,
            maximum=high,
            integer=kind is Kind.INTEGER,
            allow_off=allow_off,
        )
    return keys


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
            key = _game_key(model, name, info, name in secret_keys, defaults.get(name))
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
        keys.update(_lifecycle_keys())  # a lifecycle key of the same name wins
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
        raw = _clean(key, text)
        if key.secret and raw.lower() in _CLEAR_SECRET:
            self._validate_model(key, None, current, clear=True)
            return ParsedSetting(key, None, NOT_SET)
        if key.lifecycle:
            value: Any = self._parse_lifecycle(key, raw, current)
            if key.name in self.model.model_fields:
                self._validate_model(key, value, current)
        elif key.name not in self.model.model_fields:
            value = _candidate(key, raw)
        else:
            value = self._validate_model(key, _candidate(key, raw), current)
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
        value = _parse_scalar(key, raw)
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


# -- parsing helpers ---------------------------------------------------------------------


def _clean(key: SettingKey, text: str) -> str:
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


def _candidate(key: SettingKey, raw: str) -> Any:
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
    return _parse_scalar(key, raw)


def _parse_scalar(key: SettingKey, raw: str) -> Any:
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
