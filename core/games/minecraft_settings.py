"""The `/server set` keys of a Minecraft server, and the `.properties` format they land in.

Every value may come from a Discord user, so each is checked before it reaches a file or
an argv. `server.properties` is read and written with Java's own rules (`Properties.load` /
`store`): every value is escaped, so a newline, `=`, `:` or `\\` in it can never start a
new key, and everything outside printable ASCII is written as `\\uXXXX`, which the game
reads the same whether it decodes the file as UTF-8 or ISO-8859-1.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from core.errors import InvalidInput, InvalidValue
from core.validation import first_problem

__all__ = [
    "MAX_PROPERTIES_BYTES",
    "PLAYER_NAME",
    "MinecraftSettings",
    "clean_text",
    "decode_properties",
    "escape_property",
    "parse_properties",
    "render_properties",
    "settings_from",
    "valid_player_name",
]

PLAYER_NAME = re.compile(r"[A-Za-z0-9_]{1,16}")
"""A Minecraft player name, the only form a name may take in a console command."""

MAX_PROPERTIES_BYTES = 1024 * 1024
"""An existing properties file larger than this is refused rather than parsed."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
_RCON_PASSWORD = re.compile(r"[!-~]{4,64}")
_REFUSED_ARGS = frozenset({"--port"})
"""Server flags the profile owns: the port is the `port` setting (it is checked before start)."""


def clean_text(text: str, limit: int) -> str:
    """One line for a console command: control, line-separator and invisible characters become
    spaces, whitespace runs collapse, and the result is capped at `limit` characters.

    A console command ends at the first newline, so anything that could end it early goes.
    """
    spaced = _INVISIBLE.sub("", _CONTROL.sub(" ", text))
    return " ".join(spaced.split())[:limit].rstrip()


def valid_player_name(name: str) -> str:
    """The name itself, or InvalidInput when it is not a Minecraft name (1-16 of A-Z a-z 0-9 _)."""
    if not PLAYER_NAME.fullmatch(name):
        shown = clean_text(name, 20) or "that"
        raise InvalidInput(
            "{shown!r} is not a Minecraft player name (1 to 16 letters, digits or underscores)",
            shown=shown,
        )
    return name


def _check_arg(token: str) -> str:
    if _CONTROL.search(token) or not 0 < len(token) <= 200:
        raise InvalidValue("each argument must be 1 to 200 characters without control characters")
    flag, eq, value = token.partition("=")
    if flag.lower() in _REFUSED_ARGS:
        raise InvalidValue("{flag} is set by the bot (use the `port` setting instead)", flag=flag)
    for part in (token, value) if eq else (token,):
        segments = part.replace("\\", "/").split("/")
        if part.startswith(("/", "~")) or ".." in segments:
            raise InvalidValue(
                "{token!r} points outside the server folder; use a path inside it",
                token=token[:40],
            )
    return token


class MinecraftSettings(BaseModel):
    """Every key has a default that runs; lifecycle keys (stop_timeout...) are ignored here."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    command_args: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="extra server arguments, e.g. --forceUpgrade --world survival",
        json_schema_extra={"separator": " "},
    )
    """Appended after the operator's command line; argv is a list, never a shell string."""
    port: int = Field(default=25565, ge=1024, le=65535, description="server-port (TCP)")
    enable_rcon: bool = Field(default=False, description="use RCON instead of the console")
    rcon_port: int | None = Field(default=None, ge=1024, le=65535, description="rcon.port")
    """None: the game port + 1, inside the server's block of `port_stride` ports."""
    rcon_password: SecretStr | None = Field(
        default=None, description="RCON password (needed for enable_rcon)"
    )

    @property
    def effective_rcon_port(self) -> int:
        if self.rcon_port is not None:
            return self.rcon_port
        return self.port + 1 if self.port < 65535 else self.port - 1

    @property
    def rcon_active(self) -> bool:
        """RCON is used only when it is on and has a password (the game refuses an empty one)."""
        return self.enable_rcon and self.rcon_password is not None

    @field_validator("command_args", mode="before")
    @classmethod
    def _split_args(cls, value: Any) -> Any:
        if isinstance(value, str):
            if _CONTROL.search(value):
                raise InvalidValue("the arguments must be one line without control characters")
            try:
                return shlex.split(value)
            except ValueError as exc:
                raise InvalidValue(
                    "cannot split the arguments ({reason})", reason=str(exc)
                ) from None
        return value

    @field_validator("command_args")
    @classmethod
    def _args(cls, value: list[str]) -> list[str]:
        return [_check_arg(token) for token in value]

    @field_validator("rcon_password")
    @classmethod
    def _password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _RCON_PASSWORD.fullmatch(value.get_secret_value()):
            raise InvalidValue(
                "the RCON password must be 4 to 64 printable ASCII characters without spaces"
            )
        return value

    @model_validator(mode="after")
    def _ports_differ(self) -> MinecraftSettings:
        if self.effective_rcon_port == self.port:
            raise InvalidValue("rcon_port must differ from port")
        return self


def settings_from(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> MinecraftSettings:
    """A server's stored settings and decrypted secrets as one validated model.

    Raises InvalidInput naming the first bad key (never its value: it may be a password).
    """
    values = {k: v for k, v in settings.items() if k in MinecraftSettings.model_fields}
    if secrets.get("rcon_password"):
        values["rcon_password"] = secrets["rcon_password"]
    try:
        return MinecraftSettings.model_validate(values)
    except ValidationError as exc:
        where, message = first_problem(exc)
        if not where:  # a rule between keys
            raise InvalidInput("the setting value is invalid: {message}", message=message) from None
        raise InvalidInput(
            "the setting {where} is invalid: {message}", where=where, message=message
        ) from None


# -- .properties ---------------------------------------------------------------------------

_SPECIAL = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}
_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_BLANK = " \t\f"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # Java's only line ends (not \v, \x85, \u2028...)


def escape_property(text: str, *, key: bool = False) -> str:
    """Java's `Properties.store` escaping, with every non-ASCII character as `\\uXXXX`."""
    out: list[str] = []
    for index, char in enumerate(text):
        if char == " ":
            out.append("\\ " if key or index == 0 else " ")
        elif char in _SPECIAL:
            out.append(_SPECIAL[char])
        elif char in "=:#!":
            out.append("\\" + char)
        elif " " < char <= "~":
            out.append(char)
        else:
            units = char.encode("utf-16-be", "surrogatepass")
            out.extend(f"\\u{units[i]:02X}{units[i + 1]:02X}" for i in range(0, len(units), 2))
    return "".join(out)


def render_properties(items: Iterable[tuple[str, str]], header: str = "") -> bytes:
    """`key=value` lines (ASCII only), after `#`-comment lines made from `header`."""
    lines = [f"#{clean_text(line, 200)}" for line in header.splitlines() if line.strip()]
    lines.extend(
        f"{escape_property(key, key=True)}={escape_property(value)}" for key, value in items
    )
    return ("\n".join(lines) + "\n").encode("ascii")


def _logical_lines(text: str) -> Iterable[str]:
    """Java's LineReader: comments and blank lines dropped, `\\`-continued lines joined."""
    pending: str | None = None
    for raw in _LINE_BREAK.split(text):
        line = raw.lstrip(_BLANK)
        if pending is None and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending = (pending or "") + line[:-1]
            continue
        yield (pending or "") + line
        pending = None
    if pending:
        yield pending


def _unescape(text: str) -> str:
    out: list[str] = []
    units: list[int] = []

    def flush_units() -> None:
        if units:
            data = b"".join(u.to_bytes(2, "big") for u in units)
            out.append(data.decode("utf-16-be", "surrogatepass"))
            units.clear()

    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 >= len(text):
            flush_units()
            out.append(char if char != "\\" else "")
            index += 1
            continue
        nxt = text[index + 1]
        if nxt == "u":
            digits = text[index + 2 : index + 6]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("malformed \\uxxxx escape")
            units.append(int(digits, 16))
            index += 6
            continue
        flush_units()
        out.append(_UNESCAPE.get(nxt, nxt))
        index += 2
    flush_units()
    return "".join(out)


def _split_entry(line: str) -> tuple[str, str]:
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\":
            index += 2
            continue
        if char in "=:" or char in _BLANK:
            break
        index += 1
    key, rest = line[:index], line[index:]
    rest = rest.lstrip(_BLANK)
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(_BLANK)
    return _unescape(key), _unescape(rest)


def parse_properties(text: str) -> dict[str, str]:
    """Java's `Properties.load`: keys in file order, the last of a duplicate key wins.

    Raises ValueError on a malformed `\\u` escape, as Java does.
    """
    result: dict[str, str] = {}
    for line in _logical_lines(text):
        key, value = _split_entry(line)
        result.pop(key, None)
        result[key] = value
    return result


def decode_properties(data: bytes) -> dict[str, str]:
    """Parse file bytes the way the game does: UTF-8, else ISO-8859-1."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_properties(text)
