"""Taking back a server's game from a previous bot, or from a lost record.

A part of ManagedServer kept apart by subject (it shares the server's lock and
internals). The database keeps pid + start time since boot + boot id; a new bot adopts a
live process whose identity still matches (a reused pid never does), then the processes
carrying the server's marker (a pid that never reached the database), and only then
decides that the game exited while nobody watched. Companions (Arma 3 headless clients)
are taken back first, so whatever the server's fate they are kept or stopped with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.events import LogLines
from core.games.base import ServerContext
from core.supervisor.process import ExitStatus, ProcessHandle, ProcessIdentity, adopt, wait_exit
from core.supervisor.states import ACTIVE_STATES, RESTING_STATES, ServerState
from core.supervisor.strays import find_marked
from data.repositories.servers import ProcessRecord

if TYPE_CHECKING:
    from core.supervisor.server import ManagedServer

__all__ = ["CONSOLE_FIFO", "adopt_stray", "find_stray", "process_record", "resume", "take_over"]

_log = logging.getLogger(__name__)

S = ServerState
CONSOLE_FIFO = "console.fifo"


async def resume(
    server: ManagedServer,
    found: Sequence[ProcessIdentity] = (),
    companions: Mapping[str, Sequence[ProcessIdentity]] | None = None,
) -> str:
    """Take up where a previous bot left `server`; returns what was done (for logs).

    `found` holds the live processes carrying this server's marker and `companions` its
    marked companions by key (one scan of /proc for all servers); None scans for them.
    """
    async with server._lock:
        await server.companions.adopt(companions)
        outcome = await _resume_locked(server, found)
        if server.state is S.RUNNING:
            server.companions.ensure_later(scan=False)
        elif server.state is not S.STOPPING:  # a stop in progress stops them itself
            await server.companions.stop_all(kill=True, sweep=False)
        return outcome


async def _resume_locked(server: ManagedServer, found: Sequence[ProcessIdentity]) -> str:
    record = server._record
    ctx = await server.deps.context(server.id, server.name)
    handle = None
    if record.process is not None and server.state in ACTIVE_STATES:
        handle = adopt(
            _identity(record.process),
            console_path=_console(ctx),
            started_at=record.process.started_at,
        )
    if handle is None:
        handle = await find_stray(server, ctx, found)
    if handle is not None:
        await take_over(server, handle, ready=True)
        return f"adopted pid {handle.pid}"
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


async def take_over(server: ManagedServer, handle: ProcessHandle, *, ready: bool) -> None:
    """Own a live process found at start-up or by its marker, from whatever state."""
    if server.state in RESTING_STATES:
        server.crashes.cancel_restart()
        await server._transition(S.STARTING, f"found its game running (pid {handle.pid})")
        await server._attach(handle)
        await server._transition(S.RUNNING, f"adopted pid {handle.pid}")
        server._links.start(handle, server.generation)
        return
    await server._attach(handle)
    if server.state is S.STARTING and ready:
        ctx = await server.deps.context(server.id, server.name)
        server._await_ready_later(handle, ctx, server.deps.bus.subscribe(LogLines))
    elif server.state is S.STARTING:
        await server._transition(S.RUNNING, f"adopted pid {handle.pid}")
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
    """A live process carrying this server's marker while we think it rests: adopt it."""
    handle = await find_stray(server, ctx)
    if handle is None:
        return False
    await server._transition(S.STARTING, f"{reason}: found it already running", strict=True)
    await server._attach(handle)
    await server._transition(S.RUNNING, f"adopted pid {handle.pid}, already running")
    server._links.start(handle, server.generation)
    return True


async def find_stray(
    server: ManagedServer, ctx: ServerContext, found: Sequence[ProcessIdentity] | None = None
) -> ProcessHandle | None:
    if found is None:
        found = await asyncio.to_thread(find_marked, server.deps.instance, server.id)
    record = server._record.process
    started_at = record.started_at if record else time.time()
    for identity in found:
        handle = adopt(identity, console_path=_console(ctx), started_at=started_at)
        if handle is not None:
            _log.warning("%s: found its game running as pid %d", server.name, handle.pid)
            return handle
    return None


def process_record(handle: ProcessHandle) -> ProcessRecord:
    identity = handle.identity
    return ProcessRecord(
        identity.pid, identity.create_time, identity.cmdline, handle.started_at, identity.boot_id
    )


def _identity(record: ProcessRecord) -> ProcessIdentity:
    return ProcessIdentity(record.pid, record.create_time, record.cmdline, record.boot_id)


def _console(ctx: ServerContext) -> Path | None:
    console = ctx.folder / CONSOLE_FIFO
    return console if console.exists() else None
