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

__all__ = [
    "DIFFICULTIES",
    "EXTRA_FLAGS",
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

_FLAG_BY_LOWER = {name.lower(): name for name in EXTRA_FLAGS}
_MOD_SEGMENT = re.compile(r"[A-Za-z0-9@_+\-.][A-Za-z0-9@_+\-. ]*")
_TEMPLATE = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)+")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
_RCON_PASSWORD = re.compile(r"[!#-&(-~]{4,64}")


def canonical_difficulty(value: str) -> Difficulty:
    """`veteran` → `Veteran`; raises ValueError naming the choices."""
    for name in DIFFICULTIES:
        if name.lower() == value.strip().lower():
            return name
    raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}")


def validate_template(value: str) -> str:
    """A mission as `missionName.terrainName` (a trailing `.pbo` is dropped)."""
    text = value.strip()
    if text.lower().endswith(".pbo"):
        text = text[:-4]
    if len(text) > 120 or not _TEMPLATE.fullmatch(text):
        raise ValueError(
            f"{value[:40]!r} is not a mission name; use missionName.terrainName, "
            "e.g. co10_Escape.Altis (letters, digits, _ and -)"
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
        raise ValueError(
            f"{value[:40]!r} is not a mod folder; use @name or a path made of letters, "
            "digits, @ _ + - . and /, without '..'"
        )
    return text


def validate_flag(value: str) -> str:
    """One extra launch flag from `EXTRA_FLAGS`, in its canonical spelling."""
    name, eq, raw = value.strip().partition("=")
    canonical = _FLAG_BY_LOWER.get(name.lower())
    if canonical is None:
        allowed = ", ".join(sorted(EXTRA_FLAGS))
        raise ValueError(f"{value[:40]!r} is not an allowed flag; allowed: {allowed}")
    bounds = EXTRA_FLAGS[canonical]
    if bounds is None:
        if eq:
            raise ValueError(f"{canonical} takes no value")
        return canonical
    low, high = bounds
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ValueError(
            f"{canonical} needs a whole number from {low} to {high}, e.g. {canonical}={low}"
        )
    return f"{canonical}={int(raw)}"


def _one_line(value: str, what: str, limit: int) -> str:
    text = value.strip()
    if _CONTROL.search(text):
        raise ValueError(f"{what} must be a single line without control characters")
    if len(text) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
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

    hostname: str = Field(default="Languard Arma 3 server", min_length=1)
    password: SecretStr | None = None
    admin_password: SecretStr | None = None
    server_command_password: SecretStr | None = None
    max_players: int = Field(default=64, ge=1, le=256)
    motd: list[str] = Field(default_factory=list, max_length=20)
    motd_interval: int = Field(default=5, ge=1, le=3600)
    difficulty: Difficulty = "Regular"
    battleye: bool = True
    verify_signatures: int = Field(default=2, ge=0, le=2)
    persistent: bool = False
    von: bool = True
    port: int = Field(default=2302, ge=1024, le=65000)
    rcon_port: int | None = Field(default=None, ge=1024, le=65535)
    """None: the game port + 10 (clear of the game's own P..P+4)."""
    rcon_password: SecretStr | None = None
    mods: list[str] = Field(default_factory=list, max_length=64)
    server_mods: list[str] = Field(default_factory=list, max_length=64)
    extra_flags: list[str] = Field(default_factory=list, max_length=16)
    mission_rotation: list[MissionEntry] = Field(default_factory=list, max_length=50)

    @property
    def effective_rcon_port(self) -> int:
        return self.rcon_port if self.rcon_port is not None else self.port + 10

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        text = _one_line(value, "the hostname", 100)
        if not text:
            raise ValueError("the hostname must not be empty")
        return text

    @field_validator("password", "admin_password", "server_command_password")
    @classmethod
    def _password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if not text or _CONTROL.search(text) or len(text) > 64:
            raise ValueError("a password must be 1-64 characters on one line")
        return value

    @field_validator("rcon_password")
    @classmethod
    def _rcon_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _RCON_PASSWORD.fullmatch(value.get_secret_value()):
            raise ValueError(
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
        lines = [_one_line(line, "a motd line", 200) for line in value]
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
            raise ValueError("each extra flag may be given once")
        return flags

    @field_validator("mission_rotation", mode="before")
    @classmethod
    def _rotation_text(cls, value: Any) -> Any:
        return _split(value, ",")

    @model_validator(mode="after")
    def _consistent(self) -> Arma3Settings:
        rcon = self.effective_rcon_port
        if self.port <= rcon <= self.port + 4:
            raise ValueError(
                f"rcon_port {rcon} collides with the game ports {self.port}-{self.port + 4}; "
                "pick a port outside that range"
            )
        if "-autoInit" in self.extra_flags and not self.persistent:
            raise ValueError("-autoInit only works with persistent on; set persistent first")
        return self
