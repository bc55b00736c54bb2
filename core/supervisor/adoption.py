"""Taking back a server's game from a previous bot, or from a lost record.

A part of ManagedServer kept apart by subject (it shares the server's lock and
internals). The database keeps what the runtime identifies a unit by (locally: pid + start
time since boot + boot id); a new bot adopts a live unit whose identity still matches (a
reused pid never does), then the units carrying the server's marker (a pid that never
reached the database), and only then decides that the game exited while nobody watched.
Companions (Arma 3 headless clients) are taken back first, so whatever the server's fate
they are kept or stopped with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from core.events import LogLines
from core.games.base import ServerContext
from core.supervisor import readiness
from core.supervisor.runtime_api import ExitStatus, FoundUnit, RuntimeHandle, wait_exit
from core.supervisor.states import ACTIVE_STATES, RESTING_STATES, ServerState

if TYPE_CHECKING:
    from core.supervisor.server import ManagedServer

__all__ = ["adopt_stray", "find_stray", "resume", "take_over"]

_log = logging.getLogger(__name__)

S = ServerState


async def resume(
    server: ManagedServer,
    found: Sequence[FoundUnit] = (),
    companions: Mapping[str, Sequence[FoundUnit]] | None = None,
) -> str:
    """Take up where a previous bot left `server`; returns what was done (for logs).

    `found` holds the live units carrying this server's marker and `companions` its
    marked companions by key (one survey of the runtime for all servers); None looks now.
    """
    async with server._lock:
        await server.companions.adopt(companions)
        outcome = await _resume_locked(server, found)
        if server.state is S.RUNNING:
            server.companions.ensure_later(scan=False)
        elif server.state is not S.STOPPING:  # a stop in progress stops them itself
            await server.companions.stop_all(kill=True, sweep=False)
        return outcome


async def _resume_locked(server: ManagedServer, found: Sequence[FoundUnit]) -> str:
    record = server._record
    ctx = await server.deps.context(server.id, server.name)
    handle = None
    if record.process is not None and server.state in ACTIVE_STATES:
        handle = await server.runtime.adopt(server.unit(), record.process)
    if handle is None:
        handle = await find_stray(server, ctx, found)
    if handle is not None:
        await take_over(server, handle, ready=True)
        return f"adopted {handle.describe()}"
    if server.state is S.STOPPING:
        await server._release_process()
        await server._transition(S.STOPPED, "stopped while the bot was down")
        return "stopped while the bot was down"
    if server.state in ACTIVE_STATES:
        started = record.process.started_at if record.process else time.time()
        await server.crashes.handle(max(0.0, time.time() - started), ExitStatus(None, None))
        return "exited while the bot was down"
    if record.process is not None:
        await server.keeper.process(None)
    if server.state is S.CRASHED and not server.paused:
        policy = await server.deps.policy(server.id)
        server.crashes.schedule_restart(policy.backoff_base)
        return "restart scheduled"
    return "nothing to do"


async def take_over(server: ManagedServer, handle: RuntimeHandle, *, ready: bool) -> None:
    """Own a live unit found at start-up or by its marker, from whatever state."""
    if server.state in RESTING_STATES:
        server.crashes.cancel_restart()
        await server._transition(S.STARTING, f"found its game running ({handle.describe()})")
        await server._attach(handle)
        await server._transition(S.RUNNING, f"adopted {handle.describe()}")
        server._links.start(handle, server.generation)
        return
    await server._attach(handle)
    if server.state is S.STARTING and ready:
        ctx = await server.deps.context(server.id, server.name)
        readiness.await_ready_later(server, handle, ctx, server.deps.bus.subscribe(LogLines))
    elif server.state is S.STARTING:
        await server._transition(S.RUNNING, f"adopted {handle.describe()}")
        server._links.start(handle, server.generation)
    elif server.state is S.STOPPING:
        server.spawn_task(_finish_stop(server), "stop")
    else:
        server._links.start(handle, server.generation)


async def _finish_stop(server: ManagedServer) -> None:
    async with server._lock:
        if server.state is not S.STOPPING or server.handle is None:
            return
        handle = server.handle
        server._stopping_generation = server.generation
        policy = await server.deps.policy(server.id)
        ctx = await server.deps.context(server.id, server.name)
        await server.companions.stop_all()
        await server._graceful(handle, ctx, policy)
        await wait_exit(handle, 10.0)
        await server._release_process()
        await server._transition(S.STOPPED, "stopped")


async def adopt_stray(server: ManagedServer, ctx: ServerContext, reason: str) -> bool:
    """A live unit carrying this server's marker while we think it rests: adopt it."""
    handle = await find_stray(server, ctx)
    if handle is None:
        return False
    await server._transition(S.STARTING, f"{reason}: found it already running", strict=True)
    await server._attach(handle)
    await server._transition(S.RUNNING, f"adopted {handle.describe()}, already running")
    server._links.start(handle, server.generation)
    return True


async def find_stray(
    server: ManagedServer, ctx: ServerContext, found: Sequence[FoundUnit] | None = None
) -> RuntimeHandle | None:
    """The best live unit carrying the server's marker (`found`: from a survey; None: look
    now); the others are left to the sweep that follows the end of the one adopted."""
    record = server._record.process
    started_at = record.started_at if record else time.time()
    handles = await server.runtime.find(server.unit(), found, started_at=started_at)
    if not handles:
        return None
    handle, others = handles[0], handles[1:]
    for other in others:
        other.close()
    _log.warning("%s: found its game running as %s", server.name, handle.describe())
    return handle
