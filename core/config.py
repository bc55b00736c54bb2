"""Operator settings, read once from the environment and `.env`.

The operator (who hosts the bot) decides everything here; Discord users never do.
A wrong value must stop start-up with one line that names the variable and the fix,
so `load_settings` turns pydantic's report into `SettingsError`.
"""

from __future__ import annotations

import logging
import re
import shlex
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ARMA3_EXECUTABLE_NAMES", "Settings", "SettingsError", "load_settings"]

ARMA3_EXECUTABLE_NAMES = frozenset({"arma3server", "arma3server_x64"})
"""The allow-list of basenames an Arma 3 executable may have."""

_FIXES: dict[str, str] = {
    "DISCORD_TOKEN": "paste the bot token from the Discord developer portal",
    "LANGUARD_GUILD_ID": "use the numeric id of your Discord server (Developer Mode -> Copy ID)",
    "LANGUARD_DATA_DIR": "use a folder path the bot may write to",
    "LANGUARD_SECRET_KEY": "use a Fernet key (44 url-safe base64 characters) or leave it empty",
    "LANGUARD_ARMA3_EXECUTABLE": "use the path of arma3server or arma3server_x64",
    "LANGUARD_MINECRAFT_COMMAND": "use a command line such as: java -jar server.jar nogui",
    "LANGUARD_LOG_LEVEL": "use one of DEBUG, INFO, WARNING, ERROR",
    "LANGUARD_MINECRAFT_ACCEPT_EULA": "use true or false",
    "LANGUARD_PUBLIC_HOST": "use a host name or IP address players can reach",
    "LANGUARD_ALLOW_PRIVATE_URLS": "use true or false",
    "LANGUARD_CONSOLE_LOG_MAX_BYTES": "use a size in bytes of at least 1048576 (1 MiB)",
    "LANGUARD_CONSOLE_LOG_KEEP": "use a whole number of rotated files from 0 to 100",
}


class SettingsError(Exception):
    """A setting has a wrong value; the message is one line an operator can act on."""


class Settings(BaseSettings):
    """Every knob the operator has; tests pass values as keyword arguments."""

    model_config = SettingsConfigDict(
        env_prefix="LANGUARD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    discord_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "discord_token")
    )
    guild_id: int | None = Field(default=None, gt=0)
    data_dir: Path = Path("./var")
    secret_key: SecretStr | None = None
    arma3_executable: Path | None = None
    minecraft_command: str | None = None
    minecraft_accept_eula: bool = False
    """The operator accepts Mojang's EULA for every Minecraft server (writes eula=true)."""
    public_host: str | None = None
    """The address players connect to, shown in status embeds (else detected)."""
    allow_private_urls: bool = False
    """Let `/missions upload url:` fetch from private/loopback addresses (trusted LANs only)."""
    log_level: str = "INFO"
    console_log_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024 * 1024)
    """A server's console.log is rotated once it holds more than this many bytes."""
    console_log_keep: int = Field(default=5, ge=0, le=100)
    """Rotated copies kept beside it (console.log.1 newest); 0 keeps none."""

    @field_validator("discord_token", "secret_key", "guild_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("arma3_executable", "minecraft_command", "public_host", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("arma3_executable")
    @classmethod
    def _arma3_allowed(cls, value: Path | None) -> Path | None:
        if value is not None and value.name not in ARMA3_EXECUTABLE_NAMES:
            allowed = ", ".join(sorted(ARMA3_EXECUTABLE_NAMES))
            raise ValueError(f"basename must be one of {allowed}")
        return value

    @field_validator("minecraft_command")
    @classmethod
    def _minecraft_parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                argv = shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"cannot be split into arguments ({exc})") from None
            if not argv:
                raise ValueError("is empty")
        return value

    @field_validator("public_host")
    @classmethod
    def _host_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]{1,253}", value):
            raise ValueError("is not a host name or IP address")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_level(cls, value: Any) -> str:
        level = str(value).strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("unknown level")
        return level

    @property
    def minecraft_argv(self) -> list[str]:
        """The Minecraft command line as an argument list (never a shell string)."""
        return shlex.split(self.minecraft_command) if self.minecraft_command else []

    @property
    def log_level_number(self) -> int:
        return int(logging.getLevelName(self.log_level))


def _variable_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    if field.upper() == "DISCORD_TOKEN" or field == "discord_token":
        return "DISCORD_TOKEN"
    return "LANGUARD_" + field.upper()


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, or raise `SettingsError` with one line naming variable and fix."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = _variable_name(tuple(first.get("loc", ())))
        reason = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        fix = _FIXES.get(name, "check the value")
        raise SettingsError(f"{name} is invalid: {reason}; {fix}.") from None
