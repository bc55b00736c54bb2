"""The `/server set` keys of an Arma 3 server, validated before anything reaches a file or argv.

Every value may come from a Discord user, so each field says what it accepts in words a
user can act on. Forms users type are accepted too: `motd` as `line one|line two`, `mods` as
`@a;@b`, `extra_flags` as `-enableHT -limitFPS=120`, `mission_rotation` as
`a.Altis, b.Stratis:Veteran`. Passwords are fields (so `/server set` validates them) but
their values live encrypted in the secrets table and reach the profile through
`ServerContext.secrets`; they are `SecretStr` so no repr or log line shows them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from core.errors import InvalidValue

__all__ = [
    "DIFFICULTIES",
    "EXTRA_FLAGS",
    "MAX_HEADLESS_CLIENTS",
    "Arma3Settings",
    "Difficulty",
    "MissionEntry",
    "canonical_difficulty",
    "validate_flag",
    "validate_mod_path",
    "validate_template",
]

Difficulty = Literal["Recruit", "Regular", "Veteran", "Custom"]
DIFFICULTIES: tuple[Difficulty, ...] = ("Recruit", "Regular", "Veteran", "Custom")

EXTRA_FLAGS: dict[str, tuple[int, int] | None] = {
    "-loadMissionToMemory": None,
    "-autoInit": None,
    "-enableHT": None,
    "-filePatching": None,
    "-hugePages": None,
    "-netlog": None,
    "-limitFPS": (5, 1000),
    "-cpuCount": (1, 128),
    "-exThreads": (0, 7),
    "-maxMem": (1024, 65536),
}
"""Flags a user may add, with the allowed range of a numeric value (None: no value).

Left out on purpose: everything the profile sets itself (-port, -config, -cfg, -profiles,
-name, -bePath, -mod, -serverMod), flags that read or write arbitrary paths (-par, which
loads more arguments from a file; -ranking, -pid, -mpmissions, -keysFolder, -ip), and
-noLogs, which would blind the log channel and the crash report.
"""

MAX_HEADLESS_CLIENTS = 10
"""Each headless client is a whole game process (1-3 GB of RAM) and takes a player slot."""

_FLAG_BY_LOWER = {name.lower(): name for name in EXTRA_FLAGS}
_MOD_SEGMENT = re.compile(r"[A-Za-z0-9@_+\-.][A-Za-z0-9@_+\-. ]*")
_TEMPLATE = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)+")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
_RCON_PASSWORD = re.compile(r"[!#-&(-~]{4,64}")


def canonical_difficulty(value: str) -> Difficulty:
    """`veteran` → `Veteran`; raises InvalidValue (a ValueError) naming the choices."""
    for name in DIFFICULTIES:
        if name.lower() == value.strip().lower():
            return name
    raise InvalidValue("difficulty must be one of {choices}", choices=", ".join(DIFFICULTIES))


def validate_template(value: str) -> str:
    """A mission as `missionName.terrainName` (a trailing `.pbo` is dropped)."""
    text = value.strip()
    if text.lower().endswith(".pbo"):
        text = text[:-4]
    if len(text) > 120 or not _TEMPLATE.fullmatch(text):
        raise InvalidValue(
            "{value!r} is not a mission name; use missionName.terrainName, "
            "e.g. co10_Escape.Altis (letters, digits, _ and -)",
            value=value[:40],
        )
    return text


def validate_mod_path(value: str) -> str:
    """A mod folder: `@name`, or a relative/absolute path without `..` or shell characters."""
    text = value.strip()
    absolute = text.startswith("/")
    segments = text[1:].split("/") if absolute else text.split("/")
    ok = (
        0 < len(text) <= 200
        and not text.startswith("-")
        and all(_MOD_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments)
        and all(s == s.rstrip() for s in segments)
    )
    if not ok:
        raise InvalidValue(
            "{value!r} is not a mod folder; use @name or a path made of letters, "
            "digits, @ _ + - . and /, without '..'",
            value=value[:40],
        )
    return text


def validate_flag(value: str) -> str:
    """One extra launch flag from `EXTRA_FLAGS`, in its canonical spelling."""
    name, eq, raw = value.strip().partition("=")
    canonical = _FLAG_BY_LOWER.get(name.lower())
    if canonical is None:
        allowed = ", ".join(sorted(EXTRA_FLAGS))
        raise InvalidValue(
            "{value!r} is not an allowed flag; allowed: {allowed}",
            value=value[:40],
            allowed=allowed,
        )
    bounds = EXTRA_FLAGS[canonical]
    if bounds is None:
        if eq:
            raise InvalidValue("{flag} takes no value", flag=canonical)
        return canonical
    low, high = bounds
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidValue(
            "{flag} needs a whole number from {low} to {high}, e.g. {flag}={low}",
            flag=canonical,
            low=low,
            high=high,
        )
    return f"{canonical}={int(raw)}"


def _hostname_line(value: str) -> str:
    text = value.strip()
    if _CONTROL.search(text):
        raise InvalidValue("the hostname must be a single line without control characters")
    if len(text) > 100:
        raise InvalidValue("the hostname is longer than {limit} characters", limit=100)
    return text


def _motd_line(value: str) -> str:
    text = value.strip()
    if _CONTROL.search(text):
        raise InvalidValue("a motd line must be a single line without control characters")
    if len(text) > 200:
        raise InvalidValue("a motd line is longer than {limit} characters", limit=200)
    return text


def _split(value: Any, separators: str) -> Any:
    if isinstance(value, str):
        return [part for part in re.split(f"[{separators}]", value) if part.strip()]
    return value


class MissionEntry(BaseModel):
    """One mission of the rotation; `difficulty` None means the server's `difficulty`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str
    difficulty: Difficulty | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):  # "name.Terrain" or "name.Terrain:Veteran"
            template, _, difficulty = value.partition(":")
            return {"template": template, "difficulty": difficulty.strip() or None}
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        return validate_template(value)

    @field_validator("difficulty", mode="before")
    @classmethod
    def _difficulty(cls, value: Any) -> Any:
        return canonical_difficulty(value) if isinstance(value, str) else value


class Arma3Settings(BaseModel):
    """Every key has a default that runs; the lifecycle keys of all games are ignored here."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # each description is what a member reads in `/server set` autocomplete (translated)
    hostname: str = Field(
        default="Languard Arma 3 server", min_length=1, description="server name in the browser"
    )
    password: SecretStr | None = Field(
        default=None, description="password players need to join (off: none)"
    )
    admin_password: SecretStr | None = Field(
        default=None, description="password to #login as server admin"
    )
    server_command_password: SecretStr | None = Field(
        default=None, description="password for serverCommand in mission scripts"
    )
    max_players: int = Field(default=64, ge=1, le=256, description="most players at once, 1-256")
    motd: list[str] = Field(
        default_factory=list, max_length=20, description="welcome lines shown in turn, split by |"
    )
    motd_interval: int = Field(
        default=5, ge=1, le=3600, description="time between welcome lines, like 5s"
    )
    difficulty: Difficulty = Field(
        default="Regular", description="Recruit, Regular, Veteran or Custom"
    )
    battleye: bool = Field(
        default=True, description="BattlEye anti-cheat (on/off); Languard needs it"
    )
    verify_signatures: int = Field(
        default=2, ge=0, le=2, description="mod signature check: 0 off, 2 on"
    )
    persistent: bool = Field(
        default=False, description="keep the mission running with no player (on/off)"
    )
    von: bool = Field(default=True, description="voice chat in game (on/off)")
    port: int = Field(
        default=2302, ge=1024, le=65000, description="game port; the server also uses the next 4"
    )
    rcon_port: int | None = Field(
        default=None, ge=1024, le=65535, description="BattlEye RCon port (default: port + 10)"
    )
    """None: the game port + 10 (clear of the game's own P..P+4)."""
    rcon_password: SecretStr | None = Field(
        default=None, description="BattlEye RCon password (Languard needs one)"
    )
    mods: list[str] = Field(
        default_factory=list, max_length=64, description="mods split by ;, like @CBA_A3;@ace"
    )
    server_mods: list[str] = Field(
        default_factory=list, max_length=64, description="server-only mods, split by ;"
    )
    extra_flags: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="extra launch flags, like -limitFPS=120 -enableHT",
        json_schema_extra={"separator": " "},  # the validator splits on spaces and commas
    )
    mission_rotation: list[MissionEntry] = Field(default_factory=list, max_length=50)
    headless_clients: int = Field(
        default=0,
        ge=0,
        le=MAX_HEADLESS_CLIENTS,
        description="headless clients that run the AI beside the server, 0-10",
    )
    """Started once the server runs, stopped before it (core/games/arma3_headless.py)."""

    @property
    def effective_rcon_port(self) -> int:
        return self.rcon_port if self.rcon_port is not None else self.port + 10

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        text = _hostname_line(value)
        if not text:
            raise InvalidValue("the hostname must not be empty")
        return text

    @field_validator("password", "admin_password", "server_command_password")
    @classmethod
    def _password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if not text or _CONTROL.search(text) or len(text) > 64:
            raise InvalidValue("a password must be 1-64 characters on one line")
        return value

    @field_validator("rcon_password")
    @classmethod
    def _rcon_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _RCON_PASSWORD.fullmatch(value.get_secret_value()):
            raise InvalidValue(
                "the RCon password must be 4-64 printable ASCII characters without spaces "
                "or quotes (BattlEye's config file cannot hold anything else)"
            )
        return value

    @field_validator("motd", mode="before")
    @classmethod
    def _motd_text(cls, value: Any) -> Any:
        return _split(value, "|")

    @field_validator("motd")
    @classmethod
    def _motd_lines(cls, value: list[str]) -> list[str]:
        lines = [_motd_line(line) for line in value]
        return [line for line in lines if line]

    @field_validator("difficulty", mode="before")
    @classmethod
    def _difficulty(cls, value: Any) -> Any:
        return canonical_difficulty(value) if isinstance(value, str) else value

    @field_validator("mods", "server_mods", mode="before")
    @classmethod
    def _mods_text(cls, value: Any) -> Any:
        return _split(value, ";")

    @field_validator("mods", "server_mods")
    @classmethod
    def _mods(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(validate_mod_path(item) for item in value))

    @field_validator("extra_flags", mode="before")
    @classmethod
    def _flags_text(cls, value: Any) -> Any:
        return _split(value, " ,\t")

    @field_validator("extra_flags")
    @classmethod
    def _flags(cls, value: list[str]) -> list[str]:
        flags = [validate_flag(item) for item in value]
        names = [flag.partition("=")[0] for flag in flags]
        if len(set(names)) != len(names):
            raise InvalidValue("each extra flag may be given once")
        return flags

    @field_validator("mission_rotation", mode="before")
    @classmethod
    def _rotation_text(cls, value: Any) -> Any:
        return _split(value, ",")

    @model_validator(mode="after")
    def _consistent(self) -> Arma3Settings:
        rcon = self.effective_rcon_port
        if self.port <= rcon <= self.port + 4:
            raise InvalidValue(
                "rcon_port {rcon} collides with the game ports {port}-{last}; "
                "pick a port outside that range",
                rcon=rcon,
                port=self.port,
                last=self.port + 4,
            )
        if self.headless_clients >= self.max_players:
            raise InvalidValue(
                "each headless client takes a player slot: headless_clients ({count}) "
                "must stay below max_players ({most})",
                count=self.headless_clients,
                most=self.max_players,
            )
        if "-autoInit" in self.extra_flags and not self.persistent:
            raise InvalidValue("-autoInit only works with persistent on; set persistent first")
        return self
