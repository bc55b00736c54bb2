"""Minecraft: the operator's Java command line, a console on stdin, RCON when asked for.

The operator sets the command (`LANGUARD_MINECRAFT_COMMAND`, e.g. `java -Xmx4G -jar
server.jar nogui`); Discord users only add `command_args` after it, and the first word must
be an allowed executable (`java`). The game runs in its server folder with its stdin on a
FIFO, and is ready on `Done (1.234s)! For help, type "help"`; it is stopped with `stop`.

The EULA: Mojang's server does not run until `eula.txt` says `eula=true`. Languard never
accepts it on anyone's behalf: unless the operator built the profile with `accept_eula=True`
(the operator's own setting, meaning they read https://aka.ms/MinecraftEULA and agree),
a start is refused while `eula.txt` in the server folder is missing or not `eula=true`, with
a message that says so. Writing `eula=true` into that file by hand also accepts it.

Before each start the profile writes `server.properties` (keeping every key the file has,
setting `server-port`, `enable-rcon`, `rcon.port`, `rcon.password`; mode 0600 since it holds
the password) and adds the bot's active bans to `banned-players.json`/`banned-ips.json`,
so a banned player cannot join in the moment before the ban list is synced over the link.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import (
    ExecutableNotAllowed,
    ExecutableNotFound,
    InvalidInput,
    LanguardError,
    StartRefused,
)
from core.events import EventBus
from core.fsutil import is_within
from core.games.base import (
    BanKind,
    ConfigFile,
    GameBan,
    GameLink,
    LaunchSpec,
    LogSourceSpec,
    PortNeed,
    RuntimeControl,
    ServerContext,
)
from core.games.minecraft_link import CONSOLE_SOURCE, MinecraftLink
from core.games.minecraft_settings import (
    MAX_PROPERTIES_BYTES,
    PLAYER_NAME,
    MinecraftSettings,
    decode_properties,
    render_properties,
    settings_from,
)
from core.rcon.source_client import SourceRconClient

__all__ = ["DONE", "JAVA_EXECUTABLE_NAMES", "MinecraftProfile", "offline_uuid"]

_log = logging.getLogger(__name__)

JAVA_EXECUTABLE_NAMES = frozenset({"java"})
"""The allow-list of basenames the first word of the Minecraft command may have."""

DONE = re.compile(
    r"^(?:\[[^\]\n]{1,40}\] \[Server thread/INFO\](?: \[[^\]\n]{1,80}\])?|\[\d\d:\d\d:\d\d INFO\])"
    r': Done \(\d+(?:[.,]\d+)?s\)! For help, type "help"$'
)
"""The readiness line, prefix included, so chat quoting it does not count."""

PROPERTIES = "server.properties"
EULA = "eula.txt"
CONSOLE_LOG = "console.log"  # where the supervisor appends the game's stdout and stderr
LATEST_LOG = Path("logs") / "latest.log"
_EULA_TEXT = (
    b"#By changing the setting below to TRUE you are indicating your agreement to our EULA "
    b"(https://aka.ms/MinecraftEULA).\n"
    b"#Written by Languard: the bot's operator accepted the EULA in the bot's settings.\n"
    b"eula=true\n"
)
_HEADER = "Minecraft server properties\nserver-port and rcon.* are set by Languard at each start"
_MAX_JSON = 16 * 1024 * 1024


def offline_uuid(name: str) -> str:
    """The UUID an offline-mode server gives `name` (Java's nameUUIDFromBytes)."""
    digest = hashlib.md5(b"OfflinePlayer:" + name.encode("utf-8"), usedforsecurity=False)
    return str(uuid.UUID(bytes=digest.digest(), version=3))


class MinecraftProfile:
    """The Minecraft game; `argv` is the operator's command line as a list."""

    name = "minecraft"
    settings_model: type[MinecraftSettings] = MinecraftSettings
    secret_keys = frozenset({"rcon_password"})
    default_port = 25565
    port_stride = 10
    ban_kinds = frozenset({BanKind.NAME, BanKind.UUID, BanKind.IP})

    def __init__(
        self,
        argv: Sequence[str],
        *,
        accept_eula: bool = False,
        allowed: frozenset[str] = JAVA_EXECUTABLE_NAMES,
        link_timeout: float = 10.0,
    ) -> None:
        self._argv = tuple(argv)
        self._accept_eula = accept_eula
        self._allowed = allowed
        self.link_timeout = link_timeout

    def __repr__(self) -> str:
        first = Path(self._argv[0]).name if self._argv else "(no command)"
        return f"<MinecraftProfile {first}>"

    # -- executable ------------------------------------------------------------------------

    def executable(self) -> Path:
        try:
            return self._resolve()
        except StartRefused:
            return Path(self._argv[0]) if self._argv else Path("java")

    def check_executable(self) -> None:
        self._resolve()

    def _resolve(self) -> Path:
        if not self._argv:
            raise ExecutableNotFound(
                "no Minecraft command is set: the operator must set LANGUARD_MINECRAFT_COMMAND, "
                "e.g. `java -Xmx4G -jar server.jar nogui`"
            )
        first = self._argv[0]
        name = Path(first).name
        if name not in self._allowed:
            allowed = ", ".join(sorted(self._allowed))
            raise ExecutableNotAllowed(
                f"the Minecraft command must start with {allowed}, not {name[:40]!r}; "
                "the operator must fix LANGUARD_MINECRAFT_COMMAND"
            )
        if "/" in first:
            path = Path(first).expanduser()
            found = path if path.is_file() and os.access(path, os.X_OK) else None
        else:
            which = shutil.which(first)
            found = Path(which) if which else None
        if found is None:
            raise ExecutableNotFound(
                f"{name} was not found (or is not executable); the operator must install Java "
                "or fix LANGUARD_MINECRAFT_COMMAND"
            )
        return found.absolute()

    # -- settings and files ----------------------------------------------------------------

    def _settings(self, ctx: ServerContext) -> MinecraftSettings:
        try:
            return settings_from(ctx.settings, ctx.secrets)
        except InvalidInput as exc:
            raise StartRefused(f"{ctx.name}: {exc}; fix it with /server set") from None

    def ports(self, ctx: ServerContext) -> Sequence[PortNeed]:
        settings = self._settings(ctx)
        needs = [PortNeed(settings.port, "tcp", "game")]
        if settings.rcon_active:
            needs.append(PortNeed(settings.effective_rcon_port, "tcp", "rcon"))
        return needs

    def files(self, ctx: ServerContext) -> Sequence[ConfigFile]:
        settings = self._settings(ctx)
        files: list[ConfigFile] = []
        if self._accept_eula:
            files.append(ConfigFile(ctx.folder / EULA, _EULA_TEXT))
        else:
            self._check_eula(ctx)
        existing = self._read_properties(ctx)
        password = settings.rcon_password.get_secret_value() if settings.rcon_password else ""
        if settings.enable_rcon and not password:
            _log.warning(
                "%s: enable_rcon is on but rcon_password is not set; using the console", ctx.name
            )
        ours = {
            "server-port": str(settings.port),
            "enable-rcon": "true" if settings.rcon_active else "false",
            "rcon.port": str(settings.effective_rcon_port),
            "rcon.password": password if settings.rcon_active else "",
        }
        items = [(key, ours.pop(key, value)) for key, value in existing.items()]
        items.extend(ours.items())
        content = render_properties(items, header=_HEADER)
        files.append(ConfigFile(ctx.folder / PROPERTIES, content, secret=True))
        files.extend(self._ban_files(ctx, existing))
        return files

    def _check_eula(self, ctx: ServerContext) -> None:
        try:
            values = decode_properties((ctx.folder / EULA).read_bytes()[:65536])
        except (OSError, ValueError):
            values = {}
        if values.get("eula", "").strip().lower() != "true":
            raise StartRefused(
                f"{ctx.name}: the Minecraft EULA is not accepted. The operator must read "
                f"https://aka.ms/MinecraftEULA and, to accept it, write eula=true into "
                f"servers/{ctx.name}/{EULA} in the bot's data folder"
            )

    def _read_properties(self, ctx: ServerContext) -> dict[str, str]:
        path = ctx.folder / PROPERTIES
        if not path.exists():
            return {}
        if not is_within(path, ctx.folder):
            raise StartRefused(f"{ctx.name}: {PROPERTIES} points outside the server folder")
        try:
            data = path.read_bytes()
            if len(data) > MAX_PROPERTIES_BYTES:
                raise ValueError("the file is too large")
            return decode_properties(data)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StartRefused(
                f"{ctx.name}: {PROPERTIES} cannot be read ({reason}); fix or delete it"
            ) from None

    def _ban_files(self, ctx: ServerContext, properties: dict[str, str]) -> list[ConfigFile]:
        """The bot's bans added to the game's ban files (nothing is removed: `sync_bans` does
        that over the link, and only when a ban service asks for it)."""
        if not ctx.bans:
            return []
        now = time.time()
        active = [b for b in ctx.bans if b.expires_at is None or b.expires_at > now]
        offline = properties.get("online-mode", "true").strip().lower() == "false"
        cache = _read_json_list(ctx.folder / "usercache.json") or []
        out: list[ConfigFile] = []
        players = _read_json_list(ctx.folder / "banned-players.json")
        if players is not None:
            names = {str(e.get("name", "")).lower() for e in players}
            uuids = {str(e.get("uuid", "")).lower() for e in players}
            added = False
            for ban in active:
                entry = _player_entry(ban, cache, offline, names, uuids)
                if entry is not None:
                    players.append(entry)
                    names.add(str(entry["name"]).lower())
                    uuids.add(str(entry["uuid"]).lower())
                    added = True
            if added:
                out.append(ConfigFile(ctx.folder / "banned-players.json", _dump(players)))
        addresses = _read_json_list(ctx.folder / "banned-ips.json")
        if addresses is not None:
            held = {str(e.get("ip", "")) for e in addresses}
            fresh = [
                {"ip": b.value, **_ban_fields(b)}
                for b in active
                if b.kind is BanKind.IP and _is_ipv4(b.value) and b.value not in held
            ]
            if fresh:
                out.append(ConfigFile(ctx.folder / "banned-ips.json", _dump(addresses + fresh)))
        return out

    # -- running ---------------------------------------------------------------------------

    def prepare(self, ctx: ServerContext) -> None:
        """Refuse early when `-jar X` names a jar that is not there (java would crash-loop)."""
        args = list(self._argv[1:])
        if "-jar" not in args or args.index("-jar") + 1 >= len(args):
            return
        jar = Path(args[args.index("-jar") + 1])
        if not (jar if jar.is_absolute() else ctx.folder / jar).is_file():
            where = f"servers/{ctx.name}/{jar}" if not jar.is_absolute() else "its path"
            raise StartRefused(
                f"{ctx.name}: the server jar {jar.name!r} is missing; put it at {where} "
                "in the bot's data folder"
            )

    def launch(self, ctx: ServerContext) -> LaunchSpec:
        settings = self._settings(ctx)
        argv = (str(self._resolve()), *self._argv[1:], *settings.command_args)
        return LaunchSpec(argv=argv, cwd=ctx.folder, console=True)

    def log_sources(self, ctx: ServerContext) -> Sequence[LogSourceSpec]:
        console = ctx.folder / CONSOLE_LOG
        latest = ctx.folder / LATEST_LOG
        return [
            LogSourceSpec(CONSOLE_SOURCE, lambda: console if console.exists() else None),
            LogSourceSpec("latest", lambda: latest if latest.exists() else None),
        ]

    async def wait_ready(self, ctx: ServerContext, control: RuntimeControl) -> None:
        await control.wait_for_line(DONE, timeout=24 * 3600)  # the supervisor bounds it

    async def graceful_stop(self, ctx: ServerContext, control: RuntimeControl) -> None:
        """`stop` on the console (the game saves and exits); over RCON if there is no console."""
        try:
            control.write_console("stop")
            return
        except OSError as exc:
            _log.info("%s: console unavailable for stop (%s)", ctx.name, exc.strerror or exc)
        link = control.link
        if isinstance(link, MinecraftLink) and link.uses_rcon:
            with contextlib.suppress(LanguardError):
                await link.command("stop")

    async def open_link(
        self, ctx: ServerContext, control: RuntimeControl, bus: EventBus
    ) -> GameLink | None:
        settings = self._settings(ctx)
        rcon = None
        if settings.rcon_active and settings.rcon_password is not None:
            rcon = SourceRconClient(
                self._rcon_host(ctx),
                settings.effective_rcon_port,
                settings.rcon_password.get_secret_value(),
                timeout=self.link_timeout,
            )
        link = MinecraftLink(
            server_id=ctx.server_id,
            server=ctx.name,
            folder=ctx.folder,
            bus=bus,
            control=control,
            rcon=rcon,
            timeout=self.link_timeout,
        )
        link.start()
        return link

    def _rcon_host(self, ctx: ServerContext) -> str:
        """Where the game listens for RCON: its `server-ip` when that is an address, else
        loopback (an empty `server-ip` means every interface)."""
        with contextlib.suppress(StartRefused, ValueError):
            address = ipaddress.ip_address(self._read_properties(ctx).get("server-ip", "").strip())
            if not address.is_unspecified:
                return str(address)
        return "127.0.0.1"


# -- ban files -------------------------------------------------------------------------------


def _read_json_list(path: Path) -> list[dict[str, Any]] | None:
    """The entries of a game JSON list ([] when absent; None when unreadable: leave it be)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError:
        return None
    if len(data) > _MAX_JSON:
        return None
    try:
        entries = json.loads(data or b"[]")
    except ValueError:
        _log.warning("%s is not valid JSON; leaving it to the game", path.name)
        return None
    if not isinstance(entries, list):
        return None
    return [e for e in entries if isinstance(e, dict)]


def _ban_fields(ban: GameBan) -> dict[str, str]:
    expires = "forever"
    if ban.expires_at is not None:
        expires = time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(ban.expires_at))
    return {
        "created": time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime()),
        "source": "Languard",
        "expires": expires,
        "reason": ban.reason[:200] or "Banned by an operator.",
    }


def _player_entry(
    ban: GameBan, cache: list[dict[str, Any]], offline: bool, names: set[str], uuids: set[str]
) -> dict[str, str] | None:
    """A banned-players.json entry, or None if already there or its UUID is unknowable.

    `cache` is the game's usercache.json: the name and UUID of everyone who joined.
    """
    if ban.kind is BanKind.UUID:
        try:
            key = str(uuid.UUID(ban.value))
        except ValueError:
            return None
        if key in uuids:
            return None
        known = (str(e.get("name", "")) for e in cache if str(e.get("uuid", "")).lower() == key)
        return {"uuid": key, "name": next(known, key), **_ban_fields(ban)}
    if ban.kind is not BanKind.NAME or not PLAYER_NAME.fullmatch(ban.value):
        return None
    if ban.value.lower() in names:
        return None
    seen = (
        str(e.get("uuid", "")) for e in cache if str(e.get("name", "")).lower() == ban.value.lower()
    )
    player_uuid = next(seen, "") or (offline_uuid(ban.value) if offline else None)
    if not player_uuid:
        return None  # an online-mode name never seen here: the link bans it once running
    return {"uuid": player_uuid, "name": ban.value, **_ban_fields(ban)}


def _is_ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


def _dump(entries: list[dict[str, Any]]) -> bytes:
    return (json.dumps(entries, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
