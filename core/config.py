"""Operator settings, read once from the environment and `.env`.

The operator (who hosts the bot) decides everything here; Discord users never do.
A wrong value must stop start-up with one line that names the variable and the fix,
so `load_settings` turns pydantic's report into `SettingsError`.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import tempfile
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "ARMA3_EXECUTABLE_NAMES",
    "WORKSHOP_API_URL",
    "Settings",
    "SettingsError",
    "check_data_dir",
    "load_settings",
]

ARMA3_EXECUTABLE_NAMES = frozenset({"arma3server", "arma3server_x64"})
"""The allow-list of basenames an Arma 3 executable may have."""
WORKSHOP_API_URL = "https://api.steampowered.com/ISteamRemoteStorage/GetPublishedFileDetails/v1/"
"""Steam's Workshop details endpoint (answers without an API key)."""

_FIXES: dict[str, str] = {
    "DISCORD_TOKEN": "paste the bot token from the Discord developer portal",
    "LANGUARD_GUILD_ID": (
        "use the numeric id of your Discord server (Developer Mode -> Copy ID); "
        "several ids are separated by commas"
    ),
    "LANGUARD_DATA_DIR": "use a folder path the bot may write to",
    "LANGUARD_BACKUP_DIR": "use a folder path the bot may write to, or leave it empty",
    "LANGUARD_BACKUP_MIRROR_DIR": "use the path of a mounted folder, or leave it empty",
    "LANGUARD_BACKUP_KEEP": "use a whole number of backups per server from 1 to 1000",
    "LANGUARD_BACKUP_MAX_AGE_DAYS": "use a number of days from 1 to 3650",
    "LANGUARD_SECRET_KEY": "use a Fernet key (44 url-safe base64 characters) or leave it empty",
    "LANGUARD_ARMA3_EXECUTABLE": "use the path of arma3server or arma3server_x64",
    "LANGUARD_MINECRAFT_COMMAND": "use a command line such as: java -jar server.jar nogui",
    "LANGUARD_LOG_LEVEL": "use one of DEBUG, INFO, WARNING, ERROR",
    "LANGUARD_MINECRAFT_ACCEPT_EULA": "use true or false",
    "LANGUARD_PUBLIC_HOST": "use a host name or IP address players can reach",
    "LANGUARD_ALLOW_PRIVATE_URLS": "use true or false",
    "LANGUARD_CONSOLE_LOG_MAX_BYTES": "use a size in bytes of at least 1048576 (1 MiB)",
    "LANGUARD_CONSOLE_LOG_KEEP": "use a whole number of rotated files from 0 to 100",
    "LANGUARD_HTTP_ADDR": "use host:port on a loopback address, e.g. 127.0.0.1:9108",
    "LANGUARD_LOG_FILE": "use a file path the bot may write to, or leave it empty",
    "LANGUARD_WEBHOOK_URLS": "use http(s) URLs separated by commas",
    "LANGUARD_WEBHOOK_SECRET": "use a shared secret of at least 16 characters",
    "LANGUARD_CHAT_FROM_DISCORD": "use true or false",
    "LANGUARD_STEAMCMD": "use the path of steamcmd.sh",
    "LANGUARD_STEAM_USER": "use the name of a Steam account that owns Arma 3",
    "LANGUARD_WORKSHOP_API_URL": "use an http(s) URL, or leave it empty for Steam's own",
    "LANGUARD_MODS_DIR": "use a folder path the bot may write to, or leave it empty",
    "LANGUARD_HOSTS_FILE": "use the path of a hosts.toml file, or leave it empty for "
    "hosts.toml in the data folder",
    "LANGUARD_METRICS_INTERVAL": "use a number of seconds from 0.1 to 3600 (15 by default)",
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
    guild_ids: Annotated[tuple[int, ...], NoDecode] = Field(
        default=(), validation_alias=AliasChoices("LANGUARD_GUILD_ID", "guild_id", "guild_ids")
    )
    """The guilds this bot serves; every other guild is refused (empty: none is served)."""
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
    http_addr: str | None = None
    """host:port of the health/metrics endpoint (off when empty; loopback only)."""
    log_file: Path | None = None
    """Also log to this file, rotated (stderr is always logged to)."""
    backup_dir: Path | None = None
    """Where server backups go, a folder per server (default: <data dir>/backups)."""
    backup_mirror_dir: Path | None = None
    """A second destination (a mounted path that must exist) each backup is copied to."""
    backup_keep: int = Field(default=10, ge=1, le=1000)
    """Backups kept per server unless the server sets its own."""
    backup_max_age_days: float = Field(default=30.0, ge=1, le=3650)
    """Older backups are pruned (the newest is always kept) unless the server says."""
    webhook_urls: Annotated[tuple[str, ...], NoDecode] = ()
    """URLs that receive server events as signed JSON (comma-separated)."""
    webhook_secret: SecretStr | None = None
    """The HMAC-SHA256 key that signs webhook bodies (X-Languard-Signature)."""
    metrics_interval: float = Field(default=15.0, ge=0.1, le=3600.0)
    """Seconds between two samples of each server's CPU, RAM and player count."""
    chat_from_discord: bool = False
    """Relay moderators' messages in a server's chat channel into the game. Needs the
    privileged Message Content intent, switched on in the developer portal (Bot tab)."""
    steamcmd: Path | None = None
    """steamcmd.sh, which downloads Workshop mods and the Arma 3 server (off when empty)."""
    steam_user: str | None = None
    """A Steam account that owns Arma 3 (Workshop items of app 107410 need one); empty
    logs in anonymously, which can install nothing of Arma 3's Workshop."""
    steam_password: SecretStr | None = None
    """Given to SteamCMD in a private runscript file, never on its command line."""
    workshop_api_url: str = WORKSHOP_API_URL
    """Where Workshop item details are asked (a setting so tests can run a local fake)."""
    mods_dir: Path | None = None
    """Where Workshop mods are downloaded and their lowercase trees kept (default:
    <data dir>/mods); it needs room for every mod of the library."""
    hosts_file: Path | None = None
    """The hosts declared for Docker engines (default: <data dir>/hosts.toml; when that
    file is absent only `local` exists). Named here, the file must exist."""
    host_probe_interval: float = Field(default=15.0, ge=0.2, le=3600.0)
    """Seconds between two looks at every host (two misses in a row: unreachable)."""

    @field_validator(
        "discord_token", "secret_key", "webhook_secret", "steam_password", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "arma3_executable",
        "minecraft_command",
        "public_host",
        "http_addr",
        "log_file",
        "steamcmd",
        "steam_user",
        "mods_dir",
        "hosts_file",
        mode="before",
    )
    @classmethod
    def _empty_path_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("backup_dir", "backup_mirror_dir", mode="before")
    @classmethod
    def _empty_backup_dir_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("secret_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        """A Fernet key is 32 bytes in url-safe base64: 43 characters and one `=`."""
        if value is None:
            return None
        key = value.get_secret_value().strip()
        if not re.fullmatch(r"[A-Za-z0-9_-]{43}=", key):
            # never echo the value: it is a secret even when it is a wrong one
            raise ValueError(f"is not a Fernet key ({len(key)} characters)")
        return SecretStr(key)

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

    @field_validator("guild_ids", mode="before")
    @classmethod
    def _guild_list(cls, value: Any) -> Any:
        """One id or several separated by commas (an int from code is one id)."""
        if value is None:
            return ()
        if isinstance(value, int):
            return (value,)
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",")]
            if any(not part.isdigit() for part in parts if part) or not any(parts):
                if not value.strip():
                    return ()
                raise ValueError("is not a list of numeric ids")
            return tuple(int(part) for part in parts if part)
        return value

    @field_validator("guild_ids")
    @classmethod
    def _guilds_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(gid <= 0 for gid in value):
            raise ValueError("ids are positive numbers")
        return tuple(dict.fromkeys(value))

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _url_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _urls_http(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url) or len(url) > 2000:
                raise ValueError(f"{url[:80]!r} is not an http(s) URL")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("is shorter than 16 characters")
        return value

    @field_validator("steam_user")
    @classmethod
    def _steam_account_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", value.strip()):
            raise ValueError("is not a Steam account name")
        return None if value is None else value.strip()

    @field_validator("workshop_api_url", mode="before")
    @classmethod
    def _workshop_url(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return WORKSHOP_API_URL
        if isinstance(value, str) and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value.strip()):
            raise ValueError("is not an http(s) URL")
        return value.strip() if isinstance(value, str) else value

    @field_validator("http_addr")
    @classmethod
    def _loopback_addr(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.strip().rpartition(":")
        host = host.strip("[]")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("is not host:port")
        if host not in {"127.0.0.1", "::1", "localhost"} and not host.startswith("127."):
            raise ValueError("must be a loopback address (the endpoint has no authentication)")
        return value.strip()

    @property
    def guild_id(self) -> int | None:
        """The first configured guild (where single-guild code needs one)."""
        return self.guild_ids[0] if self.guild_ids else None

    @property
    def http_host_port(self) -> tuple[str, int] | None:
        if self.http_addr is None:
            return None
        host, _, port = self.http_addr.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def backup_root(self) -> Path:
        """Where server backups go: LANGUARD_BACKUP_DIR, else `backups` in the data dir."""
        return self.backup_dir if self.backup_dir is not None else self.data_dir / "backups"

    @property
    def mods_root(self) -> Path:
        """Where mods go: LANGUARD_MODS_DIR, else `mods` in the data dir."""
        return self.mods_dir if self.mods_dir is not None else self.data_dir / "mods"

    @property
    def hosts_path(self) -> Path:
        """Where hosts are declared: LANGUARD_HOSTS_FILE, else `hosts.toml` in the data dir."""
        return self.hosts_file if self.hosts_file is not None else self.data_dir / "hosts.toml"

    @property
    def minecraft_argv(self) -> list[str]:
        """The Minecraft command line as an argument list (never a shell string)."""
        return shlex.split(self.minecraft_command) if self.minecraft_command else []

    @property
    def log_level_number(self) -> int:
        return int(logging.getLevelName(self.log_level))


def _variable_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    if field.upper() == "DISCORD_TOKEN":
        return "DISCORD_TOKEN"
    if field.upper() in {"GUILD_ID", "GUILD_IDS", "LANGUARD_GUILD_ID"}:
        return "LANGUARD_GUILD_ID"
    return field.upper() if field.upper().startswith("LANGUARD_") else "LANGUARD_" + field.upper()


def check_data_dir(path: Path) -> None:
    """Create the data folder if needed and prove it takes a file, or raise SettingsError.

    Done before logging in, so an unusable folder is one line at start, not a traceback
    from deep inside the database or key code after Discord already said hello.
    """
    fix = _FIXES["LANGUARD_DATA_DIR"]
    if path.exists() and not path.is_dir():
        raise SettingsError(f"LANGUARD_DATA_DIR is invalid: {path} is not a folder; {fix}.")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-") as probe:
            probe.write(b"ok")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SettingsError(
            f"LANGUARD_DATA_DIR is invalid: cannot write to {path} ({reason}); {fix}."
        ) from None


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
