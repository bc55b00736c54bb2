"""Fixtures for end-to-end tests: a fake Discord on 127.0.0.1 and a way to run a real bot on it.

Usage (more in tests/e2e/fake_discord/harness.py and server.py):

async def test_something(fake_discord, start_bot):
    bot = await start_bot(make_bot())          # logged in, synced, guilds cached
    handle = await fake_discord.invoke_slash("server start", {"map": "altis"})
    reply = await handle.message()
    assert "started" in reply.content
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

# discord.py imports the stdlib `audioop` (voice), deprecated since Python 3.11; with
# pytest's filterwarnings=error that import would fail. Import it once, quietly, here.
# (A project-wide `filterwarnings` ignore in pyproject.toml would be the tidier home.)
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord

from tests.e2e.fake_discord import FakeDiscord, route_discord_to, running_client

ClientT = TypeVar("ClientT", bound=discord.Client)
StartBot = Callable[..., Awaitable[discord.Client]]


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started fake with discord.py routed to it; fails the test if the fake saw a bug
    of its own or (strict mode) a route it does not implement."""
    async with FakeDiscord() as fake:
        with route_discord_to(fake):
            yield fake
    fake.assert_clean()


@pytest.fixture
async def start_bot(fake_discord: FakeDiscord) -> AsyncIterator[StartBot]:
    """`await start_bot(client, wait_ready=False, token=None)`: run a client on the fake
    until the test ends (it is closed before the fake stops)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            client: ClientT, *, wait_ready: bool = False, token: str | None = None
        ) -> ClientT:
            return await stack.enter_async_context(
                running_client(fake_discord, client, token=token, wait_ready=wait_ready)
            )

        yield start
