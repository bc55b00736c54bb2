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
the password) and merges the bot's bans into `banned-players.json`/`banned-ips.json` (see
minecraft_bans), so a banned player cannot join in the moment before the link syncs them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

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
from core.games.minecraft_bans import found_in_ban_files, merge_ban_files, offline_uuid
from core.games.minecraft_link import CONSOLE_SOURCE, MinecraftLink
from core.games.minecraft_settings import (
    MAX_PROPERTIES_BYTES,
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
                "the Minecraft command must start with {allowed}, not {name!r}; the "
                "operator must fix LANGUARD_MINECRAFT_COMMAND",
                allowed=allowed,
                name=name[:40],
            )
        if "/" in first:
            path = Path(first).expanduser()
            found = path if path.is_file() and os.access(path, os.X_OK) else None
        else:
            which = shutil.which(first)
            found = Path(which) if which else None
        if found is None:
            raise ExecutableNotFound(
                "{name} was not found (or is not executable); the operator must install "
                "Java or fix LANGUARD_MINECRAFT_COMMAND",
                name=name,
            )
        return found.absolute()

    # -- settings and files ----------------------------------------------------------------

    def _settings(self, ctx: ServerContext) -> MinecraftSettings:
        try:
            return settings_from(ctx.settings, ctx.secrets)
        except InvalidInput as exc:
            raise StartRefused(
                "{name}: {exc}; fix it with /server set", name=ctx.name, exc=exc
            ) from None

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
                "{name}: the Minecraft EULA is not accepted. The operator must read "
                "https://aka.ms/MinecraftEULA and, to accept it, write eula=true into "
                "servers/{name}/{EULA} in the bot's data folder",
                name=ctx.name,
                EULA=EULA,
            )

    def _read_properties(self, ctx: ServerContext) -> dict[str, str]:
        path = ctx.folder / PROPERTIES
        if not path.exists():
            return {}
        if not is_within(path, ctx.folder):
            raise StartRefused(
                "{name}: {PROPERTIES} points outside the server folder",
                name=ctx.name,
                PROPERTIES=PROPERTIES,
            )
        try:
            data = path.read_bytes()
            if len(data) > MAX_PROPERTIES_BYTES:
                raise StartRefused(
                    "{name}: {PROPERTIES} cannot be read (the file is too large); fix or delete it",
                    name=ctx.name,
                    PROPERTIES=PROPERTIES,
                )
            return decode_properties(data)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StartRefused(
                "{name}: {PROPERTIES} cannot be read ({reason}); fix or delete it",
                name=ctx.name,
                PROPERTIES=PROPERTIES,
                reason=reason,
            ) from None

    def _ban_files(self, ctx: ServerContext, properties: dict[str, str]) -> list[ConfigFile]:
        """The ledger's bans merged into the game's ban files: added, lifted ones taken out,
        every other entry kept (see minecraft_bans)."""
        offline = properties.get("online-mode", "true").strip().lower() == "false"
        return merge_ban_files(ctx.folder, ctx.bans, offline=offline)

    def banned_in_files(self, folder: Path) -> list[GameBan]:
        """The bans in banned-players.json / banned-ips.json (imported before a start)."""
        return found_in_ban_files(folder)

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
                "{name}: the server jar {jar!r} is missing; put it at {where} in the "
                "bot's data folder",
                name=ctx.name,
                jar=jar.name,
                where=where,
            )

    def launch(self, ctx: ServerContext) -> LaunchSpec:
        settings = self._settings(ctx)
        argv = (str(self._resolve()), *self._argv[1:], *settings.command_args)
        return LaunchSpec(argv=argv, cwd=ctx.folder, console=True)

    def log_sources(self, ctx: ServerContext) -> Sequence[LogSourceSpec]:
        """stdout (console.log) only. Vanilla writes every line to stdout AND to
        logs/latest.log, so tailing both showed each line twice. stdout is the one of
        record: it also holds what log4j never sees (JVM errors, a crash's stack trace,
        mod loaders printing directly), the console replies the link parses come from it,
        and it is Languard's own file (appended across starts, rotated by Languard with
        exactly-once offsets), while the game gzips latest.log away at each start."""
        console = ctx.folder / CONSOLE_LOG
        return [
            LogSourceSpec(
                CONSOLE_SOURCE, lambda: console if console.exists() else None, rotate=True
            )
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
        loopback (an empty `server-ip` means every interface); the game's host when it runs
        on another machine."""
        if ctx.address is not None:
            return ctx.address
        with contextlib.suppress(StartRefused, ValueError):
            address = ipaddress.ip_address(self._read_properties(ctx).get("server-ip", "").strip())
            if not address.is_unspecified:
                return str(address)
        return "127.0.0.1"
