"""Arma 3 as a GameProfile: files, ports, launch arguments, logs, readiness and stop.

Everything Languard knows about a running Arma 3 server comes through BattlEye RCon, so a
server without BattlEye or without an RCon password is refused at start instead of being
started blind. Each server keeps everything in its own folder:

    <folder>/server.cfg, basic.cfg          -config / -cfg (server.cfg holds passwords: 0600)
    <folder>/profiles/                      -profiles: RPT files, Users/server/server.Arma3Profile
    <folder>/battleye/                      -bepath: beserver_x64.cfg (0600), bans.txt
    <folder>/.local/share/Arma 3 - Other Profiles/server/   the profile on Linux, where the
                                            game ignores -profiles and uses $HOME instead;
                                            HOME is the folder, so servers never share one
    <folder>/mpmissions/                    missions (the cwd is the folder)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from core.config import ARMA3_EXECUTABLE_NAMES
from core.errors import ConfigWriteError, ExecutableNotAllowed, ExecutableNotFound, NotRunning
from core.games.arma3_bans import found_in_bans_txt, merge_bans_txt, read_bans_txt
from core.games.arma3_config import render_beserver_cfg
from core.games.arma3_files import render_arma3profile, render_basic_cfg, render_server_cfg
from core.games.arma3_headless import headless_specs
from core.games.arma3_layout import Arma3Layout, link_install
from core.games.arma3_link import Arma3Link, RconOptions
from core.games.arma3_logs import CONSOLE_SOURCE, RPT_SOURCE, LogChoice
from core.games.arma3_settings import Arma3Settings
from core.games.base import (
    CompanionSpec,
    ConfigFile,
    GameBan,
    GameLink,
    LaunchSpec,
    LogSourceSpec,
    PortNeed,
    RuntimeControl,
    ServerContext,
)
from core.mods import LaunchMods, launch_mods
from core.rcon.battleye_client import BattlEyeClient
from core.rcon.errors import RconError, RconLoginError, RconTimeout
from core.validation import first_problem

if TYPE_CHECKING:
    from core.events import EventBus

__all__ = ["SECRET_KEYS", "Arma3Profile", "load_arma3_settings"]

_log = logging.getLogger(__name__)

SECRET_KEYS = frozenset({"password", "admin_password", "server_command_password", "rcon_password"})
_STALE_BE_CFG = "beserver*_active_*.cfg"
READY_ATTEMPT_CAP = 4.0
"""The longest one readiness login waits for an answer (it starts at `ready_attempt_timeout`)."""
_PORT_PURPOSES = ("game", "Steam query", "Steam", "VON (reserved)", "BattlEye")


def load_arma3_settings(ctx: ServerContext) -> Arma3Settings:
    """The server's settings with its passwords taken from the secrets (only from there)."""
    data = {k: v for k, v in ctx.settings.items() if k not in SECRET_KEYS}
    data.update({k: v for k, v in ctx.secrets.items() if k in SECRET_KEYS})
    try:
        return Arma3Settings.model_validate(data)
    except ValidationError as exc:
        key, reason = first_problem(exc, indexes=True)
        if not key:  # a rule between keys
            raise ConfigWriteError(
                "the settings of {name} are invalid: {reason}; fix it with /server set",
                name=ctx.name,
                reason=reason,
            ) from None
        raise ConfigWriteError(
            "the setting {key} of {name} is invalid: {reason}; fix it with /server set",
            key=key,
            name=ctx.name,
            reason=reason,
        ) from None


class Arma3Profile:
    """The Arma 3 dedicated server (`arma3server_x64` / `arma3server`), managed over BE RCon."""

    name = "arma3"
    settings_model = Arma3Settings
    secret_keys = SECRET_KEYS
    default_port = 2302
    port_stride = 100
    stale_files = (f"battleye/{_STALE_BE_CFG}",)
    """What `prepare` removes here, for a runtime whose files are out of its reach (a
    Docker volume on another host) to remove there before a start."""

    def __init__(
        self,
        executable: Path | None,
        *,
        rcon: RconOptions | None = None,
        ready_poll: float = 0.5,
        ready_attempt_timeout: float = 0.5,
        rpt_grace: float = 3.0,
    ) -> None:
        self._executable = executable
        self.rcon = rcon or RconOptions()
        self._ready_poll = ready_poll
        self._ready_attempt_timeout = ready_attempt_timeout
        self._rpt_grace = rpt_grace
        self._log_choices: dict[Path, LogChoice] = {}

    def __repr__(self) -> str:
        name = self._executable.name if self._executable else None
        return f"<Arma3Profile executable={name}>"

    def executable(self) -> Path:
        if self._executable is None:
            raise ExecutableNotFound(
                "no Arma 3 server executable is configured; the bot operator must set "
                "LANGUARD_ARMA3_EXECUTABLE to the path of arma3server_x64"
            )
        return self._executable

    def check_executable(self) -> None:
        exe = self.executable()
        if exe.name not in ARMA3_EXECUTABLE_NAMES:
            allowed = ", ".join(sorted(ARMA3_EXECUTABLE_NAMES))
            raise ExecutableNotAllowed(
                "{name} is not an Arma 3 server executable (allowed: {allowed}); fix "
                "LANGUARD_ARMA3_EXECUTABLE",
                name=exe.name,
                allowed=allowed,
            )
        if not exe.is_file():
            raise ExecutableNotFound(
                "the Arma 3 executable {name} does not exist; check LANGUARD_ARMA3_EXECUTABLE",
                name=exe.name,
            )
        if not os.access(exe, os.X_OK):
            raise ExecutableNotFound(
                "the Arma 3 executable {name} is not executable; the operator must chmod +x it",
                name=exe.name,
            )

    def ports(self, ctx: ServerContext) -> Sequence[PortNeed]:
        settings = load_arma3_settings(ctx)
        needs = [
            PortNeed(settings.port + offset, "udp", purpose)
            for offset, purpose in enumerate(_PORT_PURPOSES)
        ]
        needs.append(PortNeed(settings.effective_rcon_port, "udp", "BattlEye RCon"))
        return needs

    def _rcon_password(self, ctx: ServerContext, settings: Arma3Settings) -> str:
        if not settings.battleye:
            raise ConfigWriteError(
                "battleye is off for {name}, but Languard manages Arma 3 through "
                "BattlEye RCon (readiness, players, bans, stop); turn it on with /server "
                "set battleye on",
                name=ctx.name,
            )
        if settings.rcon_password is None:
            raise ConfigWriteError(
                "{name} has no RCon password, and Languard manages Arma 3 through "
                "BattlEye RCon; set one with /server set rcon_password <password>",
                name=ctx.name,
            )
        return settings.rcon_password.get_secret_value()

    def files(self, ctx: ServerContext) -> Sequence[ConfigFile]:
        settings = load_arma3_settings(ctx)
        password = self._rcon_password(ctx, settings)
        layout = Arma3Layout.of(ctx.folder)
        be_cfg = render_beserver_cfg(
            password=password, port=settings.effective_rcon_port, bind=self._rcon_bind(ctx)
        )
        profile = render_arma3profile(settings).encode()
        files = [
            ConfigFile(layout.server_cfg, render_server_cfg(settings).encode(), secret=True),
            ConfigFile(layout.basic_cfg, render_basic_cfg().encode()),
            ConfigFile(layout.profiles / "Users" / "server" / "server.Arma3Profile", profile),
            ConfigFile(layout.linux_profile / "server.Arma3Profile", profile),
            ConfigFile(layout.be_cfg(self.executable()), be_cfg.encode(), secret=True),
        ]
        existing = read_bans_txt(layout.bans_txt, layout.folder)
        merged = None if existing is None else merge_bans_txt(existing, ctx.bans)
        if merged is not None:  # the ledger's bans merged in; every other line kept
            files.append(ConfigFile(layout.bans_txt, merged))
        return files

    def banned_in_files(self, folder: Path) -> list[GameBan]:
        """The bans in the server's bans.txt (imported into the ledger before a start)."""
        layout = Arma3Layout.of(folder)
        data = read_bans_txt(layout.bans_txt, layout.folder)
        return [] if data is None else found_in_bans_txt(data)

    def prepare(self, ctx: ServerContext) -> None:
        """Link the install's game data into the server folder, and remove the
        `beserver*_active_*.cfg` a hard kill leaves: BattlEye would read it instead of the
        fresh cfg and RCon would not come up."""
        layout = Arma3Layout.of(ctx.folder)
        for folder in (layout.profiles, layout.battleye, layout.mpmissions):
            folder.mkdir(parents=True, exist_ok=True)
        if self._executable is not None:
            link_install(self._executable.parent, ctx.folder, layout.battleye)
        for entry in layout.battleye.iterdir():
            if fnmatchcase(entry.name.lower(), _STALE_BE_CFG) and entry.is_file():
                _log.info("%s: removing stale BattlEye config %s", ctx.name, entry.name)
                entry.unlink()
        self._log_choice(ctx).mark_start()

    def launch(self, ctx: ServerContext) -> LaunchSpec:
        settings = load_arma3_settings(ctx)
        layout = Arma3Layout.of(ctx.folder)
        argv = [
            str(self.executable()),
            f"-port={settings.port}",
            f"-config={layout.server_cfg}",
            f"-cfg={layout.basic_cfg}",
            f"-profiles={layout.profiles}",
            "-name=server",
            f"-bepath={layout.battleye}",
        ]
        # the managed set (core/mods: `modset/@name` links, in load order) comes first;
        # the free-text `mods`/`server_mods` settings follow (alone when there is no set)
        managed = launch_mods(layout.folder) or LaunchMods()
        argv.extend(managed.server_args(settings.mods, settings.server_mods))
        argv.extend(settings.extra_flags)
        return LaunchSpec(tuple(argv), cwd=layout.folder, env={"HOME": str(layout.folder)})

    def companions(self, ctx: ServerContext) -> Sequence[CompanionSpec]:
        """The server's headless clients (core/games/arma3_headless.py)."""
        return headless_specs(self.executable(), ctx, load_arma3_settings(ctx))

    def log_sources(self, ctx: ServerContext) -> Sequence[LogSourceSpec]:
        """stdout (console.log), the whole log on Linux; a start's RPT only when that start
        printed nothing to stdout (see core/games/arma3_logs.py): one source, never both."""
        choice = self._log_choice(ctx)
        return [
            LogSourceSpec(CONSOLE_SOURCE, choice.console, rotate=True),
            LogSourceSpec(RPT_SOURCE, choice.rpt),
        ]

    def _log_choice(self, ctx: ServerContext) -> LogChoice:
        layout = Arma3Layout.of(ctx.folder)
        choice = self._log_choices.get(layout.folder)
        if choice is None:
            choice = LogChoice(layout.folder, layout.newest_rpt, grace=self._rpt_grace)
            self._log_choices[layout.folder] = choice
        return choice

    def _rcon_host(self, ctx: ServerContext) -> str:
        """Where the bot sends RCon: the game's host when it runs elsewhere."""
        return ctx.address or self.rcon.host

    def _rcon_bind(self, ctx: ServerContext) -> str:
        """BattlEye's RConIP: loopback on this machine; on another host every interface,
        which its firewall must keep to the bot's address (docs/hosts.md)."""
        return self.rcon.host if ctx.address is None else "0.0.0.0"

    def _client(
        self, ctx: ServerContext, port: int, password: str, *, timeout: float, retries: int
    ) -> BattlEyeClient:
        return BattlEyeClient(
            self._rcon_host(ctx), port, password, timeout=timeout, retries=retries, reconnect=False
        )

    async def wait_ready(self, ctx: ServerContext, control: RuntimeControl) -> None:
        """Ready once an RCon login succeeds; each try uses a fresh client, so an attempt
        made before BattlEye listened never leaves state behind for the next one."""
        settings = load_arma3_settings(ctx)
        password = self._rcon_password(ctx, settings)
        port = settings.effective_rcon_port
        refused = 0
        unanswered = 0
        while True:
            if not control.is_alive():
                raise NotRunning(
                    "{name} exited before BattlEye RCon came up; see its log", name=ctx.name
                )
            # A busy host can answer a login later than any fixed wait: an attempt that went
            # unanswered doubles the next one's wait (capped), and the login is resent on the
            # same socket, so a late answer to the first packet still counts.
            timeout = min(self._ready_attempt_timeout * 2**unanswered, READY_ATTEMPT_CAP)
            client = self._client(ctx, port, password, timeout=timeout, retries=1)
            try:
                async with client:
                    return
            except RconLoginError:
                refused += 1
                if refused >= 3:
                    raise ConfigWriteError(
                        "BattlEye RCon of {name} refused the configured password", name=ctx.name
                    ) from None
            except RconTimeout as exc:
                unanswered += 1
                _log.debug("%s: RCon not answering yet: %s", ctx.name, exc)
            except (RconError, OSError) as exc:
                _log.debug("%s: RCon not up yet: %s", ctx.name, exc)
            await asyncio.sleep(self._ready_poll)

    async def open_link(
        self, ctx: ServerContext, control: RuntimeControl, bus: EventBus
    ) -> GameLink | None:
        settings = load_arma3_settings(ctx)
        return await Arma3Link.connect(
            host=self._rcon_host(ctx),
            port=settings.effective_rcon_port,
            password=self._rcon_password(ctx, settings),
            bus=bus,
            server_id=ctx.server_id,
            server=ctx.name,
            options=self.rcon,
        )

    async def graceful_stop(self, ctx: ServerContext, control: RuntimeControl) -> None:
        """`#shutdown` over the open link, or a short-lived client when there is none.

        The game may exit without answering, so the exit counts as success as well.
        """
        link = control.link
        send: asyncio.Future[object]
        if link is not None and link.connected:
            send = asyncio.ensure_future(link.command("#shutdown"))
        else:
            send = asyncio.ensure_future(self._shutdown_once(ctx))
        try:
            while not send.done() and control.is_alive():
                await asyncio.wait({send}, timeout=0.1)
        finally:
            if not send.done():
                send.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await send
        if send.cancelled():
            return
        failure = send.exception()
        if failure is not None and control.is_alive():
            raise failure  # why the game did not take the request; the supervisor escalates

    async def _shutdown_once(self, ctx: ServerContext) -> None:
        settings = load_arma3_settings(ctx)
        password = self._rcon_password(ctx, settings)
        client = self._client(
            ctx,
            settings.effective_rcon_port,
            password,
            timeout=self.rcon.timeout,
            retries=self.rcon.retries,
        )
        try:
            async with client:
                await client.command("#shutdown")
        except RconError as exc:
            raise NotRunning(
                "{name} did not take #shutdown over RCon: {exc}", name=ctx.name, exc=exc
            ) from None
