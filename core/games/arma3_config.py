"""Arma config syntax (server.cfg, basic.cfg, *.Arma3Profile), BattlEye's cfg and bans.txt.

The files themselves (what goes into server.cfg) are built in core/games/arma3_files.py.

Every file the Arma 3 profile writes comes out of a tree of `ConfigClass` values rendered
here, never out of a template with user text pasted in. Strings are escaped exactly the way
Arma's config parser reads them back:

* a `"` inside a string is doubled (`"My ""Best"" Server"`); there is no `\\"` escape,
* a backslash is an ordinary character (`"C:\\new"` keeps the `\\` and the `n`),
* a newline becomes string concatenation, `"a" \\n "b"`, so every value stays on one line,
* every other control character (C0, DEL, C1) and any lone surrogate is dropped: the game
  cannot show them, and a raw CR or NUL would end the line or the file for its parser.

So a hostname such as `x"; password = "";` or `};class` is text inside one string, never a
key. `parse_config` (core/games/arma3_config_parser.py) reads the same syntax back (tests
and the fake server prove round trips with it). BattlEye's cfg and bans.txt have no
escaping at all, so their values are checked against strict patterns instead and refused
(ValueError) when they do not fit.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = [
    "Assign",
    "BanLine",
    "ConfigClass",
    "ConfigValue",
    "ban_target",
    "clean_text",
    "parse_bans_txt",
    "parse_beserver_cfg",
    "quote",
    "render_bans_txt",
    "render_beserver_cfg",
    "render_config",
    "sanitize_line",
]

_log = logging.getLogger(__name__)

ConfigValue: TypeAlias = "str | int | float | list[ConfigValue]"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DROPPED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]+")


def clean_text(text: str) -> str:
    """`text` minus what a config string cannot hold: control characters other than `\\n`."""
    return _DROPPED.sub("", text)


def sanitize_line(text: str, limit: int) -> str:
    """One line of at most `limit` characters: control characters and line breaks become
    spaces, so a reason or chat message can never start a new line or command."""
    return _NOT_ONE_LINE.sub(" ", text).strip()[:limit].rstrip()


def quote(text: str) -> str:
    """`text` as an Arma config string literal (see the module docstring)."""
    parts = clean_text(text).split("\n")
    return " \\n ".join('"' + part.replace('"', '""') + '"' for part in parts)


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a config name: {name!r}")
    return name


def _normalize(value: object) -> ConfigValue:
    """Values as the parser will give them back: bools are 0/1, strings are cleaned."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("config numbers must be finite")
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list | tuple):
        return [_normalize(item) for item in value]
    raise TypeError(f"cannot write {type(value).__name__} into a config")


@dataclass(frozen=True, slots=True)
class Assign:
    """`name = value;`, or `name[] = {...};` when the value is a list."""

    name: str
    value: ConfigValue


@dataclass(slots=True)
class ConfigClass:
    """A `class Name { ... };` (the root of a file has the name "")."""

    name: str = ""
    entries: list[Assign | ConfigClass] = field(default_factory=list)

    def set(self, name: str, value: object) -> ConfigClass:
        """Add `name = value` (chainable). Bools become 0/1, strings are cleaned."""
        self.entries.append(Assign(_check_name(name), _normalize(value)))
        return self

    def add_class(self, name: str) -> ConfigClass:
        """Add and return an empty subclass."""
        child = ConfigClass(_check_name(name))
        self.entries.append(child)
        return child

    def get(self, name: str) -> ConfigValue | None:
        """The last value assigned to `name` (names are case-insensitive, as in Arma)."""
        wanted = name.lower()
        found: ConfigValue | None = None
        for entry in self.entries:
            if isinstance(entry, Assign) and entry.name.lower() == wanted:
                found = entry.value
        return found

    def child(self, name: str) -> ConfigClass | None:
        wanted = name.lower()
        for entry in self.entries:
            if isinstance(entry, ConfigClass) and entry.name.lower() == wanted:
                return entry
        return None

    def classes(self) -> list[ConfigClass]:
        return [entry for entry in self.entries if isinstance(entry, ConfigClass)]


# --- rendering ---------------------------------------------------------------------------


def _render_value(value: ConfigValue) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list):
        return "{" + ", ".join(_render_value(item) for item in value) + "}"
    return repr(value)


def _render_body(entries: Sequence[Assign | ConfigClass], depth: int, out: list[str]) -> None:
    pad = "    " * depth
    for entry in entries:
        if isinstance(entry, ConfigClass):
            out.append(f"{pad}class {_check_name(entry.name)}")
            out.append(f"{pad}{{")
            _render_body(entry.entries, depth + 1, out)
            out.append(f"{pad}}};")
            continue
        name = _check_name(entry.name)
        suffix = "[]" if isinstance(entry.value, list) else ""
        out.append(f"{pad}{name}{suffix} = {_render_value(entry.value)};")


def render_config(root: ConfigClass, header: Iterable[str] = ()) -> str:
    """The file text of `root`'s entries; `header` lines (our own text) become `//` comments."""
    out = [f"// {clean_text(line).replace(chr(10), ' ')}" for line in header]
    _render_body(root.entries, 0, out)
    return "\n".join(out) + "\n"


# --- parsing -----------------------------------------------------------------------------


_RCON_PASSWORD = re.compile(r"[!#-&(-~]{1,64}")
"""Printable ASCII without space, `"` and `'`: BattlEye's cfg has no quoting at all."""
_GUID = re.compile(r"[0-9a-f]{32}")


def render_beserver_cfg(
    *, password: str, port: int, bind: str = "127.0.0.1", restrict_rcon: bool = False
) -> str:
    """BattlEye's `beserver_x64.cfg`; raises ValueError for a value it cannot hold.

    `RConIP 127.0.0.1`: BE RCon sends the password in clear over UDP with no protection
    beyond a CRC, and Languard talks to it from the same host, so by default it is not
    reachable from the network at all. `RestrictRCon 0`: with 1 BattlEye refuses the `#`
    commands (`#shutdown`, `#mission`) that stopping and mission changes need.
    """
    if not _RCON_PASSWORD.fullmatch(password):
        raise ValueError("the RCon password must be 1-64 printable ASCII characters, no spaces")
    if not 1 <= port <= 65535:
        raise ValueError("the RCon port must be 1-65535")
    ipaddress.ip_address(bind)  # ValueError when it is not an address
    return (
        f"RConPassword {password}\n"
        f"RConPort {port}\n"
        f"RConIP {bind}\n"
        f"RestrictRCon {1 if restrict_rcon else 0}\n"
    )


def parse_beserver_cfg(text: str) -> dict[str, str]:
    """`Key value` lines as {lower-case key: value}; blank and `//` lines are skipped."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        key, _, value = stripped.partition(" ")
        values[key.lower()] = value.strip()
    return values


@dataclass(frozen=True, slots=True)
class BanLine:
    """One line of bans.txt: a GUID or IP, its expiry (Unix time, -1 = never) and a reason."""

    target: str
    expires: int
    reason: str = ""


def ban_target(value: str) -> str | None:
    """The form bans.txt and RCon use for a GUID (lower-case hex) or an IPv4 address."""
    text = value.strip().lower()
    if _GUID.fullmatch(text):
        return text
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(address) if address.version == 4 else None


def render_bans_txt(bans: Iterable[BanLine], *, now: float | None = None) -> str:
    """bans.txt: `<GUID-or-IP> <expiry or -1> <reason>`, expired and invalid entries left out."""
    now = time.time() if now is None else now
    lines = []
    for ban in bans:
        target = ban_target(ban.target)
        if target is None:
            _log.debug("ban target %r is neither a GUID nor an IPv4 address; skipped", ban.target)
            continue
        if ban.expires != -1 and ban.expires <= now:
            continue
        reason = sanitize_line(ban.reason, 200)
        lines.append(f"{target} {ban.expires} {reason}".rstrip())
    return "".join(line + "\n" for line in lines)


def parse_bans_txt(text: str) -> list[BanLine]:
    """Read bans.txt; malformed lines are skipped (the game ignores them too)."""
    bans = []
    for line in text.splitlines():
        fields = line.strip().split(" ", 2)
        if len(fields) < 2 or ban_target(fields[0]) is None:
            continue
        try:
            expires = int(fields[1])
        except ValueError:
            continue
        bans.append(BanLine(fields[0].lower(), expires, fields[2] if len(fields) > 2 else ""))
    return bans
