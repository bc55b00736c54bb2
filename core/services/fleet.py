"""The hosts a bot runs servers on, put to work: hosts.toml read at start, a Docker runtime
per engine offered to the supervisor, the hosts probed in the background, a new server
placed, and starts admitted through each host's queue.

Why one service: placement, the start queue, `/host` and the "unknown (host unreachable)"
display all need the same answer to "which host, is it there, has it room", and the
supervisor must stay ignorant of hosts (it only sees runtimes). A one-machine install has
only `local` here and behaves exactly as before: no capacity, no queue, no probe but psutil.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence

from core.aio import cancel_and_wait
from core.docker.hosts import DockerProbe, runtime_for
from core.docker.runtime import DockerRuntime
from core.errors import InvalidInput, NotFound, StartRefused
from core.events import EventBus, ServerCrashed, ServerStateChanged
from core.hosts.loading import HostTable
from core.hosts.model import LOCAL, EndpointKind, HostSpec
from core.hosts.queue import StartQueue, Ticket
from core.services.hosts import HostRegistry, HostState, HostStatus, LocalProbe
from core.supervisor.launching import limits_of
from core.supervisor.server import ManagedServer
from core.supervisor.states import ACTIVE_STATES, ServerState
from core.supervisor.supervisor import Supervisor
from data.repositories.servers import ServerRecord

__all__ = ["UNKNOWN_UNREACHABLE", "Fleet"]

_log = logging.getLogger(__name__)

UNKNOWN_UNREACHABLE = "unknown (host unreachable)"
"""What a server on a host that does not answer shows instead of its last known state."""


class Fleet:
    """Every host of hosts.toml, their runtimes, probes and start queues."""

    def __init__(
        self,
        table: HostTable,
        supervisor: Supervisor,
        bus: EventBus,
        *,
        probe_interval: float = 15.0,
        probe_timeout: float = 10.0,
    ) -> None:
        self.table = table
        self._sup = supervisor
        self._bus = bus
        self.probe_interval = probe_interval
        self.queue = StartQueue()
        for spec in table:
            self.queue.configure_from(spec)
        self.runtimes: dict[str, DockerRuntime] = {
            spec.name: runtime_for(spec, self._game_of, stale_of=self._stale_of)
            for spec in table
            if not spec.is_local
        }
        self.registry = HostRegistry(
            table,
            DockerProbe(self.runtimes),
            bus,
            local_probe=LocalProbe(supervisor.data_dir, lambda: self._running_on(LOCAL)),
            timeout=probe_timeout,
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._states = bus.subscribe(ServerStateChanged, ServerCrashed)

    # -- wiring ------------------------------------------------------------------------

    def install(self) -> None:
        """Offer the Docker runtimes to the supervisor and tell it where each server runs
        (before it starts: re-adoption looks on the right host)."""
        for runtime in self.runtimes.values():
            self._sup.add_runtime(runtime)
        self._sup.runtime_of = self._runtime_of
        self._sup.address_of = self._address_of
        self._sup.away = self.unreachable

    def _address_of(self, server_id: int) -> str | None:
        """The engine's host for a server on another machine; None on this one (local
        processes, or an engine on a unix socket here)."""
        try:
            spec = self.table.get(self._sup.get(server_id).runtime.name)
        except NotFound:
            return None
        endpoint = spec.endpoint
        if endpoint is None or endpoint.kind is EndpointKind.UNIX:
            return None
        return endpoint.host

    async def _runtime_of(self, record: ServerRecord) -> str:
        if record.host not in self.table.names():
            _log.error(
                "server %s is on host %s, which hosts.toml no longer declares",
                record.name,
                record.host,
            )
        return record.host

    def _stale_of(self, game: str) -> tuple[str, ...]:
        """What a hard kill of `game` leaves behind for the next start to remove (globs):
        the profile's optional `stale_files`; a remote volume is out of its own reach."""
        if game not in self._sup.profiles:
            return ()
        return tuple(getattr(self._sup.profiles.get(game), "stale_files", ()))

    def _game_of(self, server_id: int) -> str | None:
        try:
            return self._sup.get(server_id).game
        except NotFound:
            return None

    async def start(self) -> None:
        """After the supervisor's start: count what already runs, probe once, then keep
        probing and keep the ledger in step with the servers' states."""
        for server in self._sup.all():
            if server.state in ACTIVE_STATES and server.runtime.name in self.table.names():
                self.queue.hold(server.runtime.name, server.id, await self._memory(server))
        await self.registry.refresh()
        self._tasks.append(asyncio.create_task(self._follow_states(), name="hosts-ledger"))
        self._tasks.append(
            asyncio.create_task(
                self.registry.run(self.probe_interval, self._stop), name="hosts-probe"
            )
        )

    async def close(self) -> None:
        self._stop.set()
        self._states.close()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

    async def _follow_states(self) -> None:
        """A place is held from admission until the server rests again; a start that did
        not go through the queue (a restart, a crash's automatic restart) is counted too.

        A crash keeps its place while its automatic restart is pending (else the restart
        would run above capacity, after someone else took the place); a crash with no
        restart coming, a stop or a failure frees it."""
        async for event in self._states:
            if isinstance(event, ServerCrashed):
                if event.restart_in_s is None and self.queue.ticket(event.server_id) is None:
                    self.queue.release(event.server_id)
                continue
            assert isinstance(event, ServerStateChanged)
            if event.new is ServerState.CRASHED:
                continue  # the ServerCrashed that follows says whether a restart comes
            if event.new in ACTIVE_STATES:
                if self.queue.holds(event.server_id) is None:
                    with contextlib.suppress(NotFound):
                        server = self._sup.get(event.server_id)
                        memory = await self._memory(server)
                        with contextlib.suppress(NotFound):
                            self.queue.hold(server.runtime.name, server.id, memory)
            elif self.queue.ticket(event.server_id) is None:
                self.queue.release(event.server_id)

    # -- what the front end asks -------------------------------------------------------

    def names(self, prefix: str = "") -> list[str]:
        return self.registry.names(prefix)

    def statuses(self) -> list[HostStatus]:
        return self.registry.statuses()

    async def refresh(self) -> list[HostStatus]:
        """Probe every host now (`/host`)."""
        return await self.registry.refresh()

    def host_of(self, server: ManagedServer) -> str:
        return server.runtime.name

    def spec_of(self, server: ManagedServer) -> HostSpec | None:
        try:
            return self.table.get(server.runtime.name)
        except NotFound:
            return None

    def unreachable(self, server: ManagedServer) -> bool:
        """The server's host does not answer (or is no longer declared): its state is
        not known."""
        name = server.runtime.name
        if name == LOCAL:
            return False
        try:
            return self.registry.status(name).state is HostState.UNREACHABLE
        except NotFound:
            return True

    def shown_state(self, server: ManagedServer) -> str | None:
        """`unknown (host unreachable)` for an active server on a host away, else None."""
        if server.state in ACTIVE_STATES and self.unreachable(server):
            return UNKNOWN_UNREACHABLE
        return None

    def running_servers(self, host: str) -> list[str]:
        return [s.name for s in self._sup.all() if s.runtime.name == host and s.handle]

    def _running_on(self, host: str) -> int:
        return sum(1 for s in self._sup.all() if s.runtime.name == host and s.handle)

    # -- placement ---------------------------------------------------------------------

    def choose(self, game: str, host: str | None) -> str:
        """The host a new server of `game` goes to: the one named (checked), else the
        one with the most free memory among those that can run it."""
        local_games = self._sup.profiles.names()
        if host is None or not host.strip():
            return self.registry.place(game, self.queue, local_games).host
        name = host.strip().lower()
        if name not in self.table.names():
            raise InvalidInput(
                "there is no host named {name}; hosts: {hosts}",
                name=name[:40],
                hosts=", ".join(self.table.names()),
            )
        spec = self.table.get(name)
        if not spec.is_local and not spec.can_run(game):
            raise InvalidInput(
                "host {host} has no image for {game}; choose another host", host=name, game=game
            )
        return name

    # -- the start queue ---------------------------------------------------------------

    async def request(self, server: ManagedServer) -> Ticket:
        """A ticket for starting `server` on its host; refused at once when that host does
        not answer (a start there cannot go well)."""
        self.refuse_if_away(server, "start")
        memory = await self._memory(server)
        return self.queue.request(server.runtime.name, server.id, server.name, memory)

    def refuse_if_away(self, server: ManagedServer, action: str) -> None:
        """A lifecycle command on a server whose host does not answer cannot act on the
        game (it may well run there): refuse it rather than record what did not happen."""
        if not self.unreachable(server):
            return
        if action == "start":
            raise StartRefused(
                "{server} cannot start: host {host} does not answer",
                server=server.name,
                host=server.runtime.name,
            )
        raise InvalidInput(
            "{server} runs on host {host}, which does not answer: it cannot be stopped "
            "from here until the host is back",
            server=server.name,
            host=server.runtime.name,
        )

    def release(self, server: ManagedServer) -> None:
        """A start admitted but not made (refused, failed before any state change)."""
        if server.state not in ACTIVE_STATES:
            self.queue.release(server.id)

    def waiting_on(self, server: ManagedServer) -> str | None:
        """The host where a start of `server` waits in the queue, if one does."""
        ticket = self.queue.ticket(server.id)
        return None if ticket is None else ticket.host

    def forget(self, server_id: int) -> None:
        self.queue.release(server_id)

    async def _memory(self, server: ManagedServer) -> int:
        limits = limits_of(await self._sup.settings_repo.get_all(server.id))
        return limits.memory_bytes or 0

    def waiting(self, host: str) -> Sequence[Ticket]:
        with contextlib.suppress(NotFound):
            return self.queue.waiting(host)
        return ()

    def hosts_for(self, game: str) -> Collection[str]:
        """The hosts that could run `game` (for autocomplete)."""
        local = game in self._sup.profiles.names()
        return [
            s.name
            for s in self.table
            if (s.is_local and local) or (not s.is_local and s.can_run(game))
        ]
