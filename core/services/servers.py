"""Servers as users see them: create, delete, start and stop, settings and status.

Every mutation is audited with who asked and what came of it. Inputs are validated here,
secrets go encrypted into the secrets table and never into a log, a reply or the audit,
and the process work itself stays with the supervisor.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from core.errors import InvalidInput, LanguardError, NotFound
from core.hosts.model import LOCAL, EndpointKind
from core.secrets import SecretBox
from core.services.audit import Actor, AuditLog
from core.services.fleet import Fleet
from core.services.port_plan import PortPlan, check_new_port, free_block
from core.services.server_rules import (
    NAME_PATTERN,
    RESERVED_NAMES,
    PlaceHook,
    archive_folder,
    stop_first,
    strong_password,
    valid_name,
    wait_admitted,
)
from core.services.server_settings import ServerSettings
from core.services.server_status import ServerStatusReader
from core.services.server_views import (
    ActionResult,
    CreatedServer,
    DeletedServer,
    ServerCondition,
    ServerRef,
    ServerStatus,
    ServerSummary,
    SetResult,
    SettingView,
)
from core.services.settings_keys import SettingKey
from core.services.settings_schema import schema_for
from core.supervisor.server import ManagedServer
from core.supervisor.states import ACTIVE_STATES, ServerState
from core.supervisor.supervisor import Supervisor

__all__ = ["NAME_PATTERN", "RESERVED_NAMES", "PlaceHook", "ServerHook", "ServerService"]

_log = logging.getLogger(__name__)

S = ServerState
RCON_PASSWORD_KEY = "rcon_password"
MAX_CHOICES = 25
"""Discord shows at most 25 autocomplete choices."""

ServerHook = Callable[[int], Awaitable[object]]
"""Called with a server id; what it returns is ignored and a failure is only logged."""


class ServerService:
    """What the `/server` commands call."""

    def __init__(
        self,
        supervisor: Supervisor,
        audit: AuditLog,
        secret_box: SecretBox,
        *,
        public_host: str | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        self._sup = supervisor
        self._fleet = fleet
        self._audit = audit
        self._box = secret_box
        self._lock = asyncio.Lock()
        """Serialises create, delete and settings changes, so two never pick the same ports."""
        self._settings = ServerSettings(supervisor, audit, secret_box, self._lock)
        self._status = ServerStatusReader(supervisor, public_host, fleet)
        self._commands: dict[int, int] = {}
        """Lifecycle commands under way per server id: a server is never deleted under one."""
        self.on_manual_start: builtins.list[ServerHook] = []
        """Run before each `/server start` (the ScheduleService ends maintenance early)."""
        self.on_deleted: builtins.list[ServerHook] = []
        """Run after a server is archived (schedules, status messages... are dropped)."""

    # -- lookups and autocomplete ----------------------------------------------------------

    def _server(self, name: str) -> ManagedServer:
        wanted = name.strip().lower() if isinstance(name, str) else ""
        if 0 < len(wanted) <= 64:
            for server in self._sup.all():
                if server.name == wanted:
                    return server
        if NAME_PATTERN.fullmatch(wanted):
            raise NotFound("there is no server named `{wanted}`", wanted=wanted)
        raise NotFound("there is no server by that name")

    def ref(self, name: str) -> ServerRef:
        """The id and stored name of the server named `name` (NotFound with a hint)."""
        server = self._server(name)
        return ServerRef(server.id, server.name)

    def ref_by_id(self, server_id: int) -> ServerRef:
        """The server with this id (a status button or board knows only the id); NotFound
        once it is deleted."""
        server = self._sup.get(server_id)
        return ServerRef(server.id, server.name)

    async def log_tail(self, name: str, count: int) -> builtins.list[str]:
        """The last `count` log lines of a server: from memory, else from its files."""
        return await self._server(name).logs.tail(count)

    async def log_search(self, name: str, text: str, limit: int) -> tuple[builtins.list[str], bool]:
        """Recent log lines containing `text` (case-insensitive), at most `limit`; False
        when only the newest part of the files was searched."""
        return await self._server(name).logs.search(text, limit)

    def names_by_id(self) -> dict[int, str]:
        """Every server's name by id: bindings, audit rows and events name servers by id."""
        return {server.id: server.name for server in self._sup.all()}

    def condition(self, server_id: int) -> ServerCondition | None:
        """A server's state and maintenance flag by id (None when it is gone): what decides
        whether an alert about it is worth posting."""
        try:
            server = self._sup.get(server_id)
        except NotFound:
            return None
        return ServerCondition(server.state, server.paused)

    def names(self, prefix: str = "") -> builtins.list[str]:
        """Server names for autocomplete: prefix matches first, then the rest that contain it."""
        wanted = prefix.strip().lower()[:64]
        every = [server.name for server in self._sup.all()]
        first = [n for n in every if n.startswith(wanted)]
        rest = [n for n in every if wanted in n and not n.startswith(wanted)]
        return (first + rest)[:MAX_CHOICES]

    def games(self) -> builtins.list[str]:
        return self._sup.profiles.names()

    def keys_for(self, game: str, prefix: str = "") -> builtins.list[SettingKey]:
        """The `/server set` keys of a game, for autocomplete ([] for an unknown game)."""
        if game not in self._sup.profiles:
            return []
        return schema_for(self._sup.profiles.get(game)).list_keys(prefix)[:MAX_CHOICES]

    def setting_keys(self, server: str, prefix: str = "") -> builtins.list[SettingKey]:
        """The keys of a server's game, for autocomplete ([] while no known server is chosen)."""
        try:
            found = self._server(server)
        except NotFound:
            return []
        return self.keys_for(found.game, prefix)

    # -- create and delete -------------------------------------------------------------------

    async def create(
        self, actor: Actor, name: str, game: str, port: int | None = None, host: str | None = None
    ) -> CreatedServer:
        arguments: dict[str, Any] = {"name": name, "game": game, "port": port}
        if host is not None:
            arguments["host"] = host
        async with self._audit.scope(actor, "server.create", arguments, None) as outcome:
            async with self._lock:
                created = await self._create(name, game, port, host)
            outcome.server_id = created.id
            outcome.result = f"created on {created.host}, port {created.port}"
        _log.info(
            "%s created server %s (%s on %s, port %d)",
            actor.name,
            name,
            game,
            created.host,
            created.port,
        )
        return created

    async def _create(
        self, name: str, game: str, port: int | None, host: str | None
    ) -> CreatedServer:
        name = valid_name(name)
        if not isinstance(game, str) or game not in self._sup.profiles:
            raise InvalidInput(
                "unknown game; choose one of: {games}", games=", ".join(self.games())
            )
        profile = self._sup.profiles.get(game)
        repo = self._sup.servers_repo
        if any(s.name == name for s in self._sup.all()) or await repo.get_by_name(name):
            raise InvalidInput("a server named `{name}` already exists", name=name)
        where = LOCAL if self._fleet is None else self._fleet.choose(profile.name, host)
        plan = self._port_plan(where)
        taken = await self._settings.taken_ports(exclude=None, host=where)
        folder = self._sup.folder_for(name)
        if port is None:
            port = free_block(profile, name, folder, taken, plan)
        else:
            check_new_port(profile, name, folder, port, taken, plan)
        settings: dict[str, Any] = {"port": port}
        plain: dict[str, str] = {}
        if RCON_PASSWORD_KEY in profile.secret_keys:
            plain[RCON_PASSWORD_KEY] = strong_password()
        schema_for(profile).check({**settings, **plain})
        try:
            async with self._sup.db.transaction():
                record = await repo.create(name, profile.name, where)
                await self._sup.settings_repo.set_many(record.id, settings)
                for key, value in plain.items():
                    await self._sup.secrets_repo.put(record.id, key, self._box.encrypt(value))
        except sqlite3.IntegrityError:
            raise InvalidInput("a server named `{name}` already exists", name=name) from None
        try:
            if folder.exists():
                _log.warning("server %s reuses the existing folder %s", name, folder)
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            await repo.archive(record.id)
            raise LanguardError(
                "cannot create the server folder: {strerror}", strerror=exc.strerror
            ) from None
        await self._sup.add(record)
        return CreatedServer(record.id, name, profile.name, port, tuple(plain), where)

    def _port_plan(self, host: str) -> PortPlan:
        """Where ports of a server on `host` may go: its declared range, and whether the
        ports can be probed from here (this machine's network: local, a unix engine)."""
        spec = None if self._fleet is None else self._fleet.table.get(host)
        if spec is None:
            return PortPlan()
        same_machine = spec.is_local or (
            spec.endpoint is not None and spec.endpoint.kind is EndpointKind.UNIX
        )
        return PortPlan(spec.ports.low, spec.ports.high, probe=same_machine, host=host)

    def hosts(self, game: str | None = None, prefix: str = "") -> builtins.list[str]:
        """Host names for `/server create host:` (those that can run `game` when known)."""
        if self._fleet is None:
            return [LOCAL] if LOCAL.startswith(prefix.strip().lower()) else []
        names = self._fleet.names(prefix)
        if game is None or game not in self._sup.profiles:
            return names
        able = set(self._fleet.hosts_for(game))
        return [name for name in names if name in able]

    async def delete(self, actor: Actor, name: str) -> DeletedServer:
        """Archive a server that is not running: its folder is moved, its row kept hidden."""
        server = self._server(name)
        arguments = {"server": server.name}
        async with self._audit.scope(actor, "server.delete", arguments, server.id) as outcome:
            async with self._lock:
                deleted = await self._delete(server)
            outcome.result = f"archived to {deleted.archived_to or 'nothing (no folder)'}"
        await self._run_hooks(self.on_deleted, server)
        _log.info("%s deleted server %s", actor.name, server.name)
        return deleted

    async def _delete(self, server: ManagedServer) -> DeletedServer:
        if server.state in (S.CRASHED, S.FAILED):
            await server.stop(reason="deleted")  # also cancels a pending automatic restart
        if server.state is not S.STOPPED or server.handle is not None:
            raise stop_first(server.name, server.state)
        if self._commands.get(server.id):
            raise InvalidInput("`{name}` is busy with another command; try again", name=server.name)
        await self._sup.remove(server.id)  # no await between the checks and the removal
        if self._fleet is not None:
            self._fleet.forget(server.id)
        await server.runtime.forget(server.unit())  # a host's volume; never raises
        try:
            archived = await asyncio.to_thread(
                archive_folder, self._sup.data_dir, self._sup.folder_for(server.name), server.name
            )
        except OSError as exc:
            record = await self._sup.servers_repo.get(server.id)
            if record is not None:
                await self._sup.add(record)
            raise LanguardError(
                "could not archive the folder of `{name}`: {strerror}",
                name=server.name,
                strerror=exc.strerror,
            ) from None
        await self._sup.servers_repo.archive(server.id)
        return DeletedServer(server.name, archived)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(
        self, actor: Actor, name: str, on_place: PlaceHook | None = None
    ) -> ActionResult:
        """Start and wait until running (or failed); also ends a maintenance window early.

        A start that does not fit its host waits in the host's queue first; `on_place` is
        told the place (1: next) each time it moves. Cancelling the caller leaves the queue.
        """
        server = self._server(name)
        await self._run_hooks(self.on_manual_start, server)
        reason = f"started by {actor.name}"[:100]
        if self._fleet is None:
            return await self._lifecycle(
                actor, "start", server, lambda: server.start(reason=reason)
            )
        ticket = await self._fleet.request(server)
        try:
            if not ticket.done:
                _log.info("%s: start of %s waits on %s", actor.name, server.name, ticket.host)
                await wait_admitted(ticket, on_place)
            return await self._lifecycle(
                actor, "start", server, lambda: server.start(reason=reason)
            )
        finally:
            self._fleet.release(server)

    def waiting_host(self, name: str) -> str | None:
        """The host whose queue a start of `name` waits in (None: it does not wait)."""
        if self._fleet is None:
            return None
        return self._fleet.waiting_on(self._server(name))

    def cancel_start(self, name: str) -> bool:
        """Take a waiting start of `name` out of its host's queue (False: none waits)."""
        server = self._server(name)
        ticket = None if self._fleet is None else self._fleet.queue.ticket(server.id)
        return ticket is not None and ticket.cancel()

    async def stop(self, actor: Actor, name: str) -> ActionResult:
        server = self._server(name)
        reason = f"stopped by {actor.name}"[:100]
        return await self._lifecycle(actor, "stop", server, lambda: server.stop(reason=reason))

    async def kill(self, actor: Actor, name: str) -> ActionResult:
        server = self._server(name)
        reason = f"killed by {actor.name}"[:100]
        return await self._lifecycle(
            actor, "kill", server, lambda: server.stop(kill=True, reason=reason)
        )

    async def restart(self, actor: Actor, name: str) -> ActionResult:
        server = self._server(name)
        reason = f"restarted by {actor.name}"[:100]
        return await self._lifecycle(actor, "restart", server, lambda: server.restart(reason))

    @staticmethod
    async def _run_hooks(hooks: builtins.list[ServerHook], server: ManagedServer) -> None:
        for hook in builtins.list(hooks):
            try:
                await hook(server.id)
            except Exception:  # another service's bug must not block this command
                _log.exception("a hook failed for %s", server.name)

    async def _lifecycle(
        self,
        actor: Actor,
        action: str,
        server: ManagedServer,
        run: Callable[[], Awaitable[ServerState]],
    ) -> ActionResult:
        arguments = {"server": server.name}
        async with self._audit.scope(actor, f"server.{action}", arguments, server.id) as outcome:
            try:
                supervised = self._sup.get(server.id) is server
            except NotFound:
                supervised = False
            if not supervised:
                raise NotFound("`{name}` was just deleted", name=server.name)
            if self._fleet is not None and action != "start" and server.state in ACTIVE_STATES:
                self._fleet.refuse_if_away(server, action)
            self._commands[server.id] = self._commands.get(server.id, 0) + 1
            try:
                state = await run()
            finally:
                self._commands[server.id] -= 1
                if not self._commands[server.id]:
                    del self._commands[server.id]
            ok = outcome.ok = state not in (S.CRASHED, S.FAILED)
            outcome.result = state.value if ok else f"{state.value}: {server.state_reason}"
        _log.info("%s: %s %s -> %s", actor.name, action, server.name, state.value)
        return ActionResult(server.name, action, state, server.state_reason, ok)

    # -- settings ----------------------------------------------------------------------------

    async def get_settings(self, name: str) -> builtins.list[SettingView]:
        """Every key with its value as shown (secrets masked), for `/server config`."""
        return await self._settings.get_settings(self._server(name))

    async def set_setting(self, actor: Actor, name: str, key: str, value: str) -> SetResult:
        """Validate and save one key; secrets are encrypted and masked in the audit."""
        return await self._settings.set_setting(actor, self._server(name), key, value)

    # -- status ------------------------------------------------------------------------------

    async def status(self, name: str) -> ServerStatus:
        return await self._status.status(self._server(name))

    async def list(self) -> builtins.list[ServerSummary]:
        """Every server, cheaply (no game is asked anything)."""
        return await self._status.summaries()
