"""A local fake Discord (REST + gateway + CDN) that the real discord.py client talks to.

Typical use (the fixtures in tests/e2e/conftest.py do the first two steps):

    async with FakeDiscord() as fake:
        with route_discord_to(fake):
            async with running_client(fake, bot):
                handle = await fake.invoke_slash("server start", {"map": "altis"}, user=member)
                msg = await handle.message()
"""

from __future__ import annotations

from .clock import Clock
from .dispatch import InteractionHandle
from .harness import route_discord_to, running_client
from .messages import FakeMessage, MessageSnapshot, StoredFile
from .models import FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser
from .ratelimit import LimitedHit
from .records import CallbackRecord, RequestRecord, SyncRecord
from .server import FakeDiscord
from .state import FakeConfig

__all__ = [
    "CallbackRecord",
    "Clock",
    "FakeChannel",
    "FakeConfig",
    "FakeDiscord",
    "FakeGuild",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "InteractionHandle",
    "LimitedHit",
    "MessageSnapshot",
    "RequestRecord",
    "StoredFile",
    "SyncRecord",
    "route_discord_to",
    "running_client",
]
