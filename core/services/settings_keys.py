"""The keys `/server set` offers for a game: what each is, built from the game's settings
model (its fields and their constraints) and from the lifecycle keys every game shares.

Apart from the schema because building the registry reads pydantic's field metadata, while
the schema parses and validates what a member types against it.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from core.supervisor.policy import LifecyclePolicy

__all__ = ["MAX_TEXT_CHARS", "Effect", "Kind", "SettingKey", "game_key", "lifecycle_keys"]

MAX_TEXT_CHARS = 256
"""Longest text value when the model sets no max_length of its own."""
_SECONDS_SUFFIXES = ("_interval", "_timeout", "_window", "_delay")
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


def game_key(
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
    "cpu_limit": (Kind.NUMBER, "CPUs its container may use, like 2.5 (Docker hosts)", None),
    "memory_limit_mb": (Kind.INTEGER, "MiB its container may use, like 8192 (Docker hosts)", None),
    "pids_limit": (Kind.INTEGER, "processes its container may run (Docker hosts)", None),
}
_AT_START = frozenset({"cpu_limit", "memory_limit_mb", "pids_limit"})
"""Every-game keys a runtime reads when it starts the server (container limits)."""
"""The every-game keys: kind, description, and the shortest duration a user may set."""


def lifecycle_keys() -> dict[str, SettingKey]:
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
            effect=Effect.NEXT_START if name in _AT_START else Effect.NOW,
            lifecycle=True,
            default=defaults[name],
            minimum=low,
            maximum=high,
            integer=kind is Kind.INTEGER,
            allow_off=allow_off,
        )
    return keys
