"""Update-aware maintenance: mods (and the game) brought up to date with the players warned.

One order, as communities ask for it (reference §8, AMPTemplates #1781):

    check → countdown (`say -1`) → `#lock` → kick everyone → stop → download → start → verify

Check asks the Workshop (`ModService.check_updates`); nothing is touched when nothing is
new. Every running server that loads an updated mod goes through the flow (the files are
shared, so they cannot change under one of them); a server with nobody on it skips the
countdown. The download is a job of the host's queue (`ModService.update`, and SteamCMD's
`app_update 233780` when the game is asked for too). Verify reads the game's own
`List of mods` table from its log (core/mods/verify.py) and compares it with the set.

Each step is audited (`mods.maintenance.<step>`) and heard by the caller's listener as a
`JobUpdate` whose step is a `Step` word (the download's own updates are passed on: its
place in the queue, then SteamCMD's progress). A failure never leaves a server down that
was running: a failed download still starts the servers again with what is on disk, a stop
that fails ends the maintenance (the others start again, the locked one is unlocked), and
a start that fails is in the report with its reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import LanguardError
from core.events import EventBus, LogLines, Subscription
from core.games.base import GameLink, OnlinePlayer
from core.jobs import JobQueue, UpdateListener
from core.mods.model import Role
from core.mods.verify import check_loaded
from core.services.audit import Actor, AuditLog
from core.services.mod_maintenance import (
    DEFAULT_WARNINGS,
    KICK_REASON,
    MaintenanceReport,
    Progress,
    ServerOutcome,
    Step,
    read_mod_list,
    warning_text,
)
from core.services.mod_views import ModView
from core.services.mods import ModService
from core.steam import AppUpdated, SteamCmd, SteamCmdUnavailable
from core.steam.jobs import submit_app_update
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor

__all__ = ["MaintenanceReport", "ModUpdates", "ServerOutcome", "Step"]

RCON_TIMEOUT = 15.0
VERIFY_TIMEOUT = 30.0
"""How long after the start the game's mod list may take to reach the log."""

_log = logging.getLogger(__name__)


@dataclass
class _Live:
    """A running server going through the flow."""

    server: ManagedServer
    warnings: int = 0
    kicked: int = 0
    stopped: bool = False
    problem: LanguardError | None = None


class ModUpdates:
    def __init__(
        self,
        supervisor: Supervisor,
        mods: ModService,
        audit: AuditLog,
        jobs: JobQueue,
        bus: EventBus,
        *,
        steam: SteamCmd | None = None,
        game_dir: Path | None = None,
        warnings: Sequence[float] = DEFAULT_WARNINGS,
        verify_timeout: float = VERIFY_TIMEOUT,
    ) -> None:
        self._sup = supervisor
        self._mods = mods
        self._audit = audit
        self._jobs = jobs
        self._bus = bus
        self._steam = steam
        self._game_dir = game_dir
        self.warnings = tuple(warnings)
        """Seconds before the lock at which players are warned; empty: no countdown."""
        self.verify_timeout = verify_timeout
        self._busy = asyncio.Lock()

    async def run(
        self,
        actor: Actor,
        server: str | None = None,
        *,
        game: bool = False,
        on_update: UpdateListener | None = None,
    ) -> MaintenanceReport:
        """Update the mods of `server`'s set (or of the whole library), and the game too
        when `game`; running servers that load them go through the whole flow."""
        if self._busy.locked():
            raise LanguardError("a mod update is already under way; wait for its summary")
        async with self._busy:
            progress = Progress(on_update)
            arguments = {"server": server or "", "game": game}
            async with self._audit.scope(actor, "mods.maintenance", arguments) as scope:
                report = await self._run(actor, server, game, progress)
                scope.result = (
                    "up to date"
                    if report.up_to_date
                    else f"{len(report.mods)} mod(s), servers {[s.name for s in report.servers]}"
                )
                scope.ok = report.failure is None and all(s.problem is None for s in report.servers)
                return report

    # -- the flow ----------------------------------------------------------------------------

    async def _run(
        self, actor: Actor, server: str | None, game: bool, progress: Progress
    ) -> MaintenanceReport:
        await progress.step(Step.CHECKING)
        await self._scope(server)  # an unknown or non-Arma server: refused before asking
        await self._mods.check_updates(actor)  # the Workshop down: nothing was touched
        views = await self._scope(server)
        todo = [v for v in views if not v.installed or (v.update_available and not v.pinned)]
        held = tuple(v for v in views if v.pinned and v.installed)
        if not todo and not game:
            return MaintenanceReport(held=held)
        self._need_steam(game)
        targets = self._targets(server, todo, game)
        live = [_Live(s) for s in targets if s.state is ServerState.RUNNING]
        if live:
            await self._wind_down(actor, live, progress)
        failure = next((w.problem for w in live if not w.stopped), None)
        installed: tuple[ModView, ...] = ()
        app: AppUpdated | None = None
        if failure is None:
            installed, app, failure = await self._download(actor, todo, game, progress)
        outcomes = [await self._bring_back(actor, w, progress) for w in live]
        quiet = [ServerOutcome(s.name, False, False) for s in targets if s not in _servers(live)]
        return MaintenanceReport(installed, held, app, tuple(outcomes + quiet), failure)

    async def _scope(self, server: str | None) -> list[ModView]:
        if server is None:
            return await self._mods.list()
        return [row.mod for row in (await self._mods.server_mods(server)).mods]

    def _need_steam(self, game: bool) -> None:
        if self._steam is None:
            raise SteamCmdUnavailable(
                "SteamCMD is not set up: set LANGUARD_STEAMCMD to the path of steamcmd.sh"
            )
        if game and self._game_dir is None:
            raise LanguardError(
                "the game's folder is unknown: set LANGUARD_ARMA3_EXECUTABLE to update the game"
            )

    def _targets(
        self, server: str | None, todo: Sequence[ModView], game: bool
    ) -> list[ManagedServer]:
        """The servers an update touches: those loading an updated mod (all Arma 3 ones
        for the game). Naming one server never restarts another one behind its back."""
        names = {name for view in todo for name in view.servers}
        if game:
            names |= {s.name for s in self._sup.all() if s.game == "arma3"}
        if server is not None:
            own = self._sup.by_name(server.strip().lower()).name
            others = sorted(
                n for n in names - {own} if self._sup.by_name(n).state is ServerState.RUNNING
            )
            if others:
                raise LanguardError(
                    "running servers {servers} load the same files; run `/mods update` "
                    "without a server to update them together",
                    servers=", ".join(others),
                )
            names.add(own)
        return [self._sup.by_name(name) for name in sorted(names)]

    async def _wind_down(self, actor: Actor, live: list[_Live], progress: Progress) -> None:
        """Countdown, lock, kick and stop every running server, side by side."""
        loop = asyncio.get_running_loop()
        lock_at = loop.time() + max(self.warnings, default=0.0)
        await progress.step(Step.WARNING)
        await asyncio.gather(*(self._countdown(actor, w, lock_at) for w in live))
        await progress.step(Step.LOCKING)
        await asyncio.gather(*(self._lock(actor, w) for w in live))
        await progress.step(Step.KICKING)
        await asyncio.gather(*(self._kick(actor, w) for w in live))
        await progress.step(Step.STOPPING)
        await asyncio.gather(*(self._stop(actor, w) for w in live))

    async def _countdown(self, actor: Actor, live: _Live, lock_at: float) -> None:
        server, loop = live.server, asyncio.get_running_loop()
        if not self.warnings or not await self._players(server):
            return  # nobody to warn: no reason to wait
        for before in sorted(self.warnings, reverse=True):
            await asyncio.sleep(max(0.0, lock_at - before - loop.time()))
            if await self._say(server, warning_text(before)):
                live.warnings += 1
        await asyncio.sleep(max(0.0, lock_at - loop.time()))
        await self._record(actor, live, "warn", f"{live.warnings} warning(s) said")

    async def _lock(self, actor: Actor, live: _Live) -> None:
        ok = await self._rcon(live.server, lambda link: link.command("#lock"))
        await self._record(actor, live, "lock", "locked" if ok else "RCon did not answer", ok)

    async def _kick(self, actor: Actor, live: _Live) -> None:
        server = live.server
        for player in await self._players(server):
            link = server.link
            try:
                if link is not None:
                    async with asyncio.timeout(RCON_TIMEOUT):
                        await link.kick(player, KICK_REASON)
                    live.kicked += 1
            except Exception as exc:  # the stop disconnects them anyway
                _log.info("kicking %s from %s failed: %s", player.name, server.name, exc)
        await self._record(actor, live, "kick", f"{live.kicked} player(s) kicked")

    async def _stop(self, actor: Actor, live: _Live) -> None:
        server = live.server
        try:
            state = await server.stop(reason="mod update")
        except LanguardError as exc:
            state, live.problem = server.state, exc
        live.stopped = state is ServerState.STOPPED
        if not live.stopped and live.problem is None:
            live.problem = LanguardError(
                "{name} did not stop (it is {state}); nothing was downloaded",
                name=server.name,
                state=state.value,
            )
        result = "stopped" if live.stopped else str(live.problem)
        await self._record(actor, live, "stop", result, live.stopped)

    async def _download(
        self, actor: Actor, todo: Sequence[ModView], game: bool, progress: Progress
    ) -> tuple[tuple[ModView, ...], AppUpdated | None, LanguardError | None]:
        installed: tuple[ModView, ...] = ()
        app: AppUpdated | None = None
        failure: LanguardError | None = None
        if todo:
            try:
                refs = [str(view.id) for view in todo]
                download = await self._mods.update(actor, refs, on_update=progress.forward)
                if download.job is not None:
                    installed = (await download.job.result()).installed
            except LanguardError as exc:
                failure = exc
        if game and failure is None:
            assert self._steam is not None and self._game_dir is not None
            try:
                job = submit_app_update(
                    self._jobs, self._steam, self._game_dir, on_update=progress.forward
                )
                app = await job.result()
            except LanguardError as exc:
                failure = exc
        result = f"{len(installed)} mod(s)" + (", the game" if app else "")
        await self._audit.record(
            actor,
            "mods.maintenance.download",
            arguments={"mods": ", ".join(str(v.id) for v in todo)[:500], "game": game},
            result=str(failure) if failure else result,
            ok=failure is None,
        )
        return installed, app, failure

    async def _bring_back(self, actor: Actor, live: _Live, progress: Progress) -> ServerOutcome:
        """Start a server that ran before, then read its mod list from the new log."""
        server = live.server
        base = ServerOutcome(server.name, True, False, live.warnings, live.kicked)
        if not live.stopped:  # the stop failed: it may still run, locked
            await self._rcon(server, lambda link: link.command("#unlock"))
            return replace(base, running=server.state is ServerState.RUNNING, problem=live.problem)
        await progress.step(Step.STARTING)
        lines = self._bus.subscribe(LogLines)  # before the start: its first lines count
        try:
            try:
                state = await server.start(reason="mod update")
            except LanguardError as exc:
                await self._record(actor, live, "start", str(exc), False)
                return replace(base, problem=exc)
            if state is not ServerState.RUNNING:
                problem = LanguardError(
                    "{name} did not come back: it is {state}; see `/logs tail`",
                    name=server.name,
                    state=state.value,
                )
                await self._record(actor, live, "start", str(problem), False)
                return replace(base, problem=problem)
            await self._record(actor, live, "start", "running")
            await progress.step(Step.VERIFYING)
            done = replace(base, running=True, **await self._verify(server, lines))
        finally:
            lines.close()
        if done.expected:
            result = (
                "no mod list in the log"
                if done.verified is None
                else f"{len(done.loaded)} of {done.expected} loaded"
            )
            await self._record(actor, live, "verify", result, done.verified is not False)
        return done

    async def _verify(self, server: ManagedServer, lines: Subscription) -> dict[str, Any]:
        """loaded / not_loaded / verified / expected, from the game's `List of mods`."""
        try:
            managed = await self._mods.launch_mods(server.id)
        except LanguardError:
            managed = None
        expected = (
            [] if managed is None else [p for p, r in managed.entries if r is not Role.HEADLESS]
        )
        if not expected:
            return {}
        reader = await read_mod_list(lines, server.id, self.verify_timeout)
        if not reader.seen:
            return {"expected": len(expected)}
        loaded, missing = check_loaded(reader.rows, expected)
        return {
            "loaded": loaded,
            "not_loaded": missing,
            "verified": not missing,
            "expected": len(expected),
        }

    # -- helpers -----------------------------------------------------------------------------

    async def _players(self, server: ManagedServer) -> list[OnlinePlayer]:
        link = server.link
        if server.state is not ServerState.RUNNING or link is None:
            return []
        try:
            async with asyncio.timeout(RCON_TIMEOUT):
                return await link.players()
        except Exception as exc:  # unknown: treated as nobody (the stop ends it anyway)
            _log.info("asking %s who is on failed: %s", server.name, exc)
            return []

    async def _say(self, server: ManagedServer, text: str) -> bool:
        return await self._rcon(server, lambda link: link.say(text))

    async def _rcon(
        self, server: ManagedServer, action: Callable[[GameLink], Awaitable[object]]
    ) -> bool:
        link = server.link
        if link is None:
            return False
        try:
            async with asyncio.timeout(RCON_TIMEOUT):
                await action(link)
        except Exception as exc:  # best effort: the flow goes on (the stop still comes)
            _log.info("an RCon command to %s failed: %s", server.name, exc)
            return False
        return True

    async def _record(
        self, actor: Actor, live: _Live, step: str, result: str, ok: bool = True
    ) -> None:
        await self._audit.record(
            actor, f"mods.maintenance.{step}", server_id=live.server.id, result=result, ok=ok
        )


def _servers(live: Sequence[_Live]) -> list[ManagedServer]:
    return [w.server for w in live]
