"""Pointing the real discord.py client at the fake, and running a client for a test.

How discord.py is redirected (the only patches, undone on exit):

* `discord.http.Route.BASE` -- every REST call, including the webhook/interaction calls in
  `discord.webhook.async_` (which builds the same `Route`), is `Route.BASE + path`.
* `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` -- a plain `Client.connect()` never asks
  `GET /gateway`; it opens this hard-coded URL. (`AutoShardedClient` asks `/gateway/bot`,
  which the fake answers with its own URL.) After READY the client keeps
  `resume_gateway_url` from the READY payload, which is the fake too.
* `discord.asset.Asset.BASE` -- so avatar/icon URLs point at the fake (404) instead of
  the real CDN. Attachments need nothing: their URLs come from the fake's payloads.

They are class attributes read at call time, so swapping them is enough: no discord.py
function is replaced, and the client under test runs unmodified.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import discord
import yarl
from discord.asset import Asset
from discord.gateway import DiscordWebSocket
from discord.http import Route

from .server import FakeDiscord

ClientT = TypeVar("ClientT", bound=discord.Client)


@contextlib.contextmanager
def route_discord_to(fake: FakeDiscord) -> Iterator[None]:
    """Send discord.py's REST, gateway and asset URLs to `fake` for the duration."""
    saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY, Asset.BASE)
    Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    Asset.BASE = fake.cdn_base
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY, Asset.BASE = saved


@contextlib.asynccontextmanager
async def running_client(
    fake: FakeDiscord,
    client: ClientT,
    *,
    token: str | None = None,
    timeout: float = 10.0,
    wait_ready: bool = False,
) -> AsyncIterator[ClientT]:
    """Run `client.start()` against the fake; yield once its guilds are in its cache.

    `setup_hook` (and any `tree.sync()` in it) has run by then. `wait_ready=True` also
    waits for `on_ready` (discord.py delays it by `guild_ready_timeout`, 2 s by default).
    On exit the client is closed and its task awaited, so nothing is left running.
    """
    if fake.api_base != Route.BASE:
        raise RuntimeError("discord.py is not routed to this fake; use route_discord_to(fake)")
    task = asyncio.create_task(client.start(token or fake.token), name="fake-discord-client")
    body_failed = False
    try:
        await _until(task, _guilds_cached(fake, client), timeout)
        if wait_ready:
            await _until(task, client.wait_until_ready(), timeout)
        yield client
    except BaseException:
        body_failed = True
        raise
    finally:
        await _stop(client, task, timeout, raise_errors=not body_failed)


async def _stop(
    client: discord.Client, task: asyncio.Task[None], timeout: float, *, raise_errors: bool
) -> None:
    """Close the client, await its task; surface its error unless one is already in flight."""
    await client.close()
    done, _ = await asyncio.wait({task}, timeout=timeout)
    # discord.py leaves its "delay on_ready" task running when closed before on_ready.
    ready_task = getattr(client._connection, "_ready_task", None)
    if ready_task is not None and not ready_task.done():
        ready_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ready_task
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if raise_errors:
            raise TimeoutError(f"the client did not stop within {timeout}s of close()")
        return
    error = None if task.cancelled() else task.exception()
    if error is not None and raise_errors:
        raise error


async def _guilds_cached(fake: FakeDiscord, client: discord.Client) -> None:
    await fake.wait_until_connected()
    wanted = [g.id for g in fake.world.bot_guilds()]
    while any(client.get_guild(gid) is None for gid in wanted):
        await asyncio.sleep(0.01)


async def _until(task: asyncio.Task[None], coro: Coroutine[Any, Any, Any], timeout: float) -> None:
    """Await `coro`, but fail at once if the client task dies (e.g. LoginFailure)."""
    waiter = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait(
            {task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter in done:
            waiter.result()
            return
        if task in done:
            task.result()  # re-raises the client's error
            raise RuntimeError("the client stopped before it was connected")
        raise TimeoutError(f"client not connected to the fake within {timeout}s")
    finally:
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
