"""Servers as users see them: create, delete, start and stop, settings and status.

Every mutation is audited with who asked and what came of it. Inputs are validated here,
secrets go encrypted into the secrets table and never into a log, a reply or the audit,
and the process work itself stays with the supervisor.
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import logging
import re
import secrets
import shutil
import socket
import sqlite3
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidInput, LanguardError, NotFound
from core.games.base import GameProfile
from core.secrets import SecretBox, SecretError
from core.services.audit import Actor, AuditLog
from core.services.host import host_addresses, primary_address
from core.services.port_plan import (
    base_port,
    busy_on_host,
    check_new_port,
    free_block,
    occupied_ports,
    overlapping_server,
)
from core.services.settings_keys import Effect, SettingKey
from core.services.settings_schema import MASK, NOT_SET, SettingsSchema, schema_for
from core.supervisor.server import ManagedServer
from core.supervisor.states import ACTIVE_STATES, ServerState
from core.supervisor.supervisor import Supervisor

__all__ = [
    "NAME_PATTERN",
    "RESERVED_NAMES",
    "ActionResult",
    "CreatedServer",
    "DeletedServer",
    "ServerCondition",
    "ServerHook",
    "ServerRef",
    "ServerService",
    "ServerStatus",
    "ServerSummary",
    "SetResult",
    "SettingView",
]

_log = logging.getLogger(__name__)

S = ServerState
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,30}[a-z0-9]")
RESERVED_NAMES = frozenset(
    {"all", "any", "none", "null", "new", "list", "help", "default", "server", "servers"}
    | {"archive", "global", "everyone", "here", "languard", "con", "nul", "aux", "prn"}
)
RCON_PASSWORD_KEY = "rcon_password"
MAX_CHOICES = 25
"""Discord shows at most 25 autocomplete choices."""
PLAYERS_TIMEOUT = 3.0
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
_PASSWORD_LENGTH = 24

ServerHook = Callable[[int], Awaitable[object]]
"""Called with a server id; what it returns is ignored and a failure is only logged."""


@dataclass(frozen=True, slots=True)
class CreatedServer:
    id: int
    name: str
    game: str
    port: int
    generated_secrets: tuple[str, ...]
    """Names (never values) of the secrets generated for it, e.g. `rcon_password`."""


@dataclass(frozen=True, slots=True)
class DeletedServer:
    name: str
    archived_to: str | None
    """The archive folder relative to the data folder; None when there was no folder."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    name: str
    action: str
    state: ServerState
    reason: str
    ok: bool
    """False when the server ended crashed or failed (e.g. it never became ready)."""


@dataclass(frozen=True, slots=True)
class SettingView:
    key: str
    value: str
    """As shown: secrets are `••••••` when set and `(not set)` otherwise."""
    description: str
    effect: Effect
    secret: bool
    is_default: bool


@dataclass(frozen=True, slots=True)
class SetResult:
    key: str
    value: str
    """As shown (masked for secrets)."""
    effect: Effect
    next_start: bool
    """True when the server is up now and only picks the value up at its next start."""
    message: str


@dataclass(frozen=True, slots=True)
class ServerRef:
    """Which server a command is about, without handing the front end the server itself."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class ServerCondition:
    """What alerts need of a server: its state, and whether maintenance mutes it."""

    state: ServerState
    paused: bool


@dataclass(frozen=True, slots=True)
class ServerSummary:
    name: str
    game: str
    state: ServerState
    state_reason: str
    uptime: float | None
    address: str
    paused: bool


@dataclass(frozen=True, slots=True)
class ServerStatus:
    name: str
    game: str
    state: ServerState
    state_reason: str
    uptime: float | None
    pid: int | None
    players_online: int | None
    """None when no link to the game is open (or it did not answer)."""
    players_max: int | None
    player_names: tuple[str, ...]
    mission: str | None
    cpu_percent: float | None
    rss_bytes: int | None
    address: str
    paused: bool
    started_at: float | None = None
    """When the running process started (epoch seconds); None when there is none."""
    headless: tuple[int, int] | None = None
    """Arma 3 headless clients (running, wanted) while the server runs with some; else None."""


def _valid_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            "a server name is 3 to 32 lowercase letters, digits or hyphens, "
            "not starting or ending with a hyphen (like `main-1`)"
        )
    if name in RESERVED_NAMES:
        raise InvalidInput("`{name}` is a reserved word; choose another name", name=name)
    return name


def _strong_password() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_LENGTH))


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _headless(server: ManagedServer) -> tuple[int, int] | None:
    running, wanted = server.companions.counts()
    return (running, wanted) if wanted else None


def _mission(settings: Mapping[str, Any]) -> str | None:
    """The first entry of the mission rotation, if the server has one."""
    rotation = settings.get("mission_rotation")
    if not isinstance(rotation, list) or not rotation:
        return None
    first = rotation[0]
    if isinstance(first, str):
        return first
    if isinstance(first, dict):
        for field in ("template", "name", "mission"):
            if isinstance(first.get(field), str):
                return str(first[field])
    return None


class ServerService:
    """What the `/server` commands call."""

    def __init__(
        self,
        supervisor: Supervisor,
        audit: AuditLog,
        secret_box: SecretBox,
        *,
        public_host: str | None = None,
    ) -> None:
        self._sup = supervisor
        self._audit = audit
        self._box = secret_box
        self._public_host = public_host
        self._lock = asyncio.Lock()
        """Serialises create, delete and settings changes, so two never pick the same ports."""
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
        self, actor: Actor, name: str, game: str, port: int | None = None
    ) -> CreatedServer:
        arguments = {"name": name, "game": game, "port": port}
        async with self._audit.scope(actor, "server.create", arguments, None) as outcome:
            async with self._lock:
                created = await self._create(name, game, port)
            outcome.server_id = created.id
            outcome.result = f"created on port {created.port}"
        _log.info("%s created server %s (%s, port %d)", actor.name, name, game, created.port)
        return created

    async def _create(self, name: str, game: str, port: int | None) -> CreatedServer:
        name = _valid_name(name)
        if not isinstance(game, str) or game not in self._sup.profiles:
            raise InvalidInput(
                "unknown game; choose one of: {games}", games=", ".join(self.games())
            )
        profile = self._sup.profiles.get(game)
        repo = self._sup.servers_repo
        if any(s.name == name for s in self._sup.all()) or await repo.get_by_name(name):
            raise InvalidInput("a server named `{name}` already exists", name=name)
        taken = await self._taken_ports(exclude=None)
        folder = self._sup.folder_for(name)
        if port is None:
            port = free_block(profile, name, folder, taken)
        else:
            check_new_port(profile, name, folder, port, taken)
        settings: dict[str, Any] = {"port": port}
        plain: dict[str, str] = {}
        if RCON_PASSWORD_KEY in profile.secret_keys:
            plain[RCON_PASSWORD_KEY] = _strong_password()
        schema_for(profile).check({**settings, **plain})
        try:
            async with self._sup.db.transaction():
                record = await repo.create(name, profile.name)
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
        return CreatedServer(record.id, name, profile.name, port, tuple(plain))

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
            raise _stop_first(server.name, server.state)
        if self._commands.get(server.id):
            raise InvalidInput("`{name}` is busy with another command; try again", name=server.name)
        await self._sup.remove(server.id)  # no await between the checks and the removal
        try:
            archived = await asyncio.to_thread(self._archive_folder, server.name)
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

    def _archive_folder(self, name: str) -> str | None:
        source = self._sup.folder_for(name)
        if not source.exists():
            return None
        root = self._sup.data_dir / "archive"
        root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = root / f"{name}-{stamp}"
        suffix = 2
        while target.exists():
            target = root / f"{name}-{stamp}-{suffix}"
            suffix += 1
        shutil.move(source, target)
        return str(target.relative_to(self._sup.data_dir))

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, actor: Actor, name: str) -> ActionResult:
        """Start and wait until running (or failed); also ends a maintenance window early."""
        server = self._server(name)
        await self._run_hooks(self.on_manual_start, server)
        reason = f"started by {actor.name}"[:100]
        return await self._lifecycle(actor, "start", server, lambda: server.start(reason=reason))

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
        server = self._server(name)
        schema = schema_for(server.profile)
        stored = await self._sup.settings_repo.get_all(server.id)
        secret_keys = set(await self._sup.secrets_repo.keys(server.id))
        views: builtins.list[SettingView] = []
        for key in schema.list_keys():
            if key.secret:
                is_set = key.name in secret_keys
                shown, is_default = (MASK if is_set else NOT_SET), not is_set
            else:
                is_default = key.name not in stored
                shown = schema.display(key.name, stored.get(key.name, key.default))
            views.append(
                SettingView(key.name, shown, key.description, key.effect, key.secret, is_default)
            )
        return views

    async def set_setting(self, actor: Actor, name: str, key: str, value: str) -> SetResult:
        """Validate and save one key; secrets are encrypted and masked in the audit."""
        server = self._server(name)
        schema = schema_for(server.profile)
        known = key.strip().lower()[:40] if isinstance(key, str) else ""
        # the value stays masked unless the key is known and not secret: a mistyped key
        # (`pasword`) must not put a password into the audit. (Named `setting`, because
        # mask_secrets hides any argument called `key`.)
        arguments = {"setting": known, "value": MASK}
        async with self._audit.scope(actor, "server.set", arguments, server.id) as outcome:
            spec = schema.key(key)
            if not spec.secret:
                outcome.arguments = {"setting": spec.name, "value": value}
            async with self._lock:
                result = await self._set(server, schema, spec, value)
            outcome.arguments = {"setting": spec.name, "value": result.value}
            outcome.result = result.message
        _log.info("%s set %s on %s", actor.name, spec.name, server.name)
        return result

    async def _set(
        self, server: ManagedServer, schema: SettingsSchema, spec: SettingKey, value: str
    ) -> SetResult:
        stored = await self._sup.settings_repo.get_all(server.id)
        current = {**stored, **await self._decrypted(server.id)}
        parsed = schema.parse(spec.name, value, current)
        if spec.secret:
            if parsed.value is None:
                await self._sup.secrets_repo.delete(server.id, spec.name)
            else:
                encrypted = self._box.encrypt(str(parsed.value))
                await self._sup.secrets_repo.put(server.id, spec.name, encrypted)
        else:
            if not spec.lifecycle:
                await self._check_changed_ports(server, stored, {**stored, spec.name: parsed.value})
            await self._sup.settings_repo.set(server.id, spec.name, parsed.value)
        active = server.state in ACTIVE_STATES
        next_start = active and spec.effect is Effect.NEXT_START
        if spec.name == "liveness_interval" and active:
            before = stored.get(spec.name, spec.default)
            next_start = isinstance(before, int | float) and before <= 0 < float(parsed.value)
        if next_start:
            message = "saved; takes effect at the next start (restart the server to apply it)"
        elif spec.effect is Effect.NEXT_START:
            message = "saved; used when the server starts"
        else:
            message = "saved; in effect now"
        return SetResult(spec.name, parsed.shown, spec.effect, next_start, message)

    async def _check_changed_ports(
        self, server: ManagedServer, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> None:
        folder = self._sup.folder_for(server.name)
        mine = occupied_ports(server.profile, server.name, folder, after)
        if mine == occupied_ports(server.profile, server.name, folder, before):
            return
        other = overlapping_server(mine, await self._taken_ports(exclude=server.id))
        if other is not None:
            raise InvalidInput("that would overlap the ports of server `{other}`", other=other)
        if server.state not in ACTIVE_STATES:
            busy = busy_on_host(server.profile, server.name, folder, after)
            if busy:
                raise InvalidInput("{busy} is already in use on this host", busy=busy)

    async def _taken_ports(self, exclude: int | None) -> dict[str, set[int]]:
        """The ports of every server but the one with id `exclude`, by server name."""
        taken: dict[str, set[int]] = {}
        for server in self._sup.all():
            if server.id != exclude:
                settings = await self._sup.settings_repo.get_all(server.id)
                folder = self._sup.folder_for(server.name)
                taken[server.name] = occupied_ports(server.profile, server.name, folder, settings)
        return taken

    async def _decrypted(self, server_id: int) -> dict[str, str]:
        """The server's secrets in plain text, for validation only; never returned."""
        plain: dict[str, str] = {}
        for key in await self._sup.secrets_repo.keys(server_id):
            token = await self._sup.secrets_repo.get(server_id, key)
            if token is None:
                continue
            try:
                plain[key] = self._box.decrypt(token)
            except SecretError:
                _log.warning("secret %s of server %d cannot be decrypted", key, server_id)
        return plain

    # -- status ------------------------------------------------------------------------------

    def _host(self) -> str:
        if self._public_host is None:
            addresses = host_addresses()
            self._public_host = primary_address() or (
                addresses[0] if addresses else socket.gethostname()
            )
        return self._public_host

    def _address(self, profile: GameProfile, settings: Mapping[str, Any]) -> str:
        host = self._host()
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass  # a host name
        return f"{host}:{base_port(profile, settings)}"

    async def _players(self, server: ManagedServer) -> tuple[int | None, tuple[str, ...]]:
        link = server.link
        if link is None or server.state is not S.RUNNING:
            return None, ()
        try:
            async with asyncio.timeout(PLAYERS_TIMEOUT):
                players = await link.players()
        except (LanguardError, TimeoutError, OSError) as exc:
            _log.debug("players of %s unknown: %s", server.name, exc)
            return None, ()
        return len(players), tuple(player.name for player in players)

    async def status(self, name: str) -> ServerStatus:
        server = self._server(name)
        schema = schema_for(server.profile)
        settings = await self._sup.settings_repo.get_all(server.id)
        sample = await self._sup.sample(server)
        online, names = await self._players(server)
        most = settings.get("max_players")
        if most is None and "max_players" in schema:
            most = schema.default("max_players")
        handle = server.handle
        return ServerStatus(
            name=server.name,
            game=server.game,
            state=server.state,
            state_reason=server.state_reason,
            uptime=server.uptime(),
            pid=None if handle is None else handle.pid,
            players_online=online,
            players_max=_as_int(most),
            player_names=names,
            mission=_mission(settings),
            cpu_percent=None if sample is None else sample.cpu_percent,
            rss_bytes=None if sample is None else sample.rss_bytes,
            address=self._address(server.profile, settings),
            paused=server.paused,
            started_at=None if handle is None else handle.started_at,
            headless=_headless(server),
        )

    async def list(self) -> builtins.list[ServerSummary]:
        """Every server, cheaply (no game is asked anything)."""
        summaries: builtins.list[ServerSummary] = []
        for server in self._sup.all():
            settings = await self._sup.settings_repo.get_all(server.id)
            summaries.append(
                ServerSummary(
                    name=server.name,
                    game=server.game,
                    state=server.state,
                    state_reason=server.state_reason,
                    uptime=server.uptime(),
                    address=self._address(server.profile, settings),
                    paused=server.paused,
                )
            )
        return summaries


def _stop_first(name: str, state: ServerState) -> InvalidInput:
    """A delete refused while a process exists (or is being made)."""
    if state is S.STARTING:
        return InvalidInput("`{name}` is starting; stop it first", name=name)
    if state is S.STOPPING:
        return InvalidInput("`{name}` is stopping; stop it first", name=name)
    return InvalidInput("`{name}` is running; stop it first", name=name)
