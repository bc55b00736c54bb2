"""From `starting` to `running`: the profile's readiness check, bounded by `start_timeout`.

A part of ManagedServer kept apart by subject (it shares the server's lock and internals).
A start that never gets ready is killed and goes `failed` with the reason, once; a check
that comes back after a stop or a newer start (another generation) changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from signal import SIGKILL
from typing import TYPE_CHECKING

from core.events import ServerFailed, Subscription
from core.games.base import ServerContext
from core.supervisor.control import ProcessControl
from core.supervisor.runtime_api import RuntimeHandle, wait_exit
from core.supervisor.states import ServerState

if TYPE_CHECKING:
    from core.supervisor.server import ManagedServer

__all__ = ["await_ready_later"]

_log = logging.getLogger(__name__)

S = ServerState


def await_ready_later(
    server: ManagedServer, handle: RuntimeHandle, ctx: ServerContext, lines: Subscription
) -> None:
    """Wait for readiness in a task of the server's (a stop cancels it)."""
    task = server.spawn_task(_await_ready(server, handle, ctx, lines, server.generation), "ready")
    # a stop may cancel the task before it ever runs: the subscription must still go
    task.add_done_callback(lambda _: lines.close())
    server._ready_task = task


async def _await_ready(
    server: ManagedServer,
    handle: RuntimeHandle,
    ctx: ServerContext,
    lines: Subscription,
    generation: int,
) -> None:
    policy = await server.deps.policy(server.id)
    try:
        async with asyncio.timeout(policy.start_timeout):
            await server.profile.wait_ready(ctx, ProcessControl(server.id, handle, lines))
    except TimeoutError:
        await _fail_start(server, generation, f"not ready after {policy.start_timeout:g} s")
        return
    except Exception as exc:  # a profile's probe failing must not leave it starting
        _log.warning("readiness of %s failed: %s", server.name, exc)
        await _fail_start(server, generation, f"readiness check failed: {exc}")
        return
    finally:
        lines.close()
    async with server._lock:
        if server.generation == generation and server.state is S.STARTING:
            await server._transition(S.RUNNING, "ready")
            server._links.start(handle, generation)


async def _fail_start(server: ManagedServer, generation: int, reason: str) -> None:
    async with server._lock:
        if server.generation != generation or server.state is not S.STARTING:
            return
        handle = server.handle
        server._stopping_generation = generation
        if handle is not None:
            await handle.signal(SIGKILL)
            await wait_exit(handle, 10.0)
        await server._release_process()
        await server._transition(S.FAILED, reason, expected=False)
        server.deps.bus.publish(
            ServerFailed(server_id=server.id, server=server.name, reason=reason, crashes=0)
        )
