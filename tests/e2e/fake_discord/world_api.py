"""World building and gateway pushes for `FakeDiscord` (a base class, split out for size)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .bodies import Upload
from .gateway import Gateway
from .messages import StoredFile
from .models import TEXT_CHANNEL, FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser, World
from .state import FakeState


class WorldAPI:
    """Builders mutate the fake's world at once (interactions and REST see it); a client
    already connected sees gateway-cached changes only after `resync_guild()`."""

    state: FakeState
    gateway: Gateway

    @property
    def world(self) -> World:
        return self.state.world

    @property
    def bot_user(self) -> FakeUser:
        return self.state.world.bot

    @property
    def guild(self) -> FakeGuild:
        """The default guild ("Test Guild"): owner, the bot, a #general channel."""
        return next(iter(self.state.world.guilds.values()))

    @property
    def owner(self) -> FakeUser:
        return self.state.world.users[self.guild.owner_id]

    @property
    def general(self) -> FakeChannel:
        return self.guild.channel_named("general")

    def add_user(
        self, name: str, *, roles: Sequence[FakeRole] = (), guild: FakeGuild | None = None
    ) -> FakeMember:
        """A new user who is a member of `guild` (default guild) with `roles`."""
        user = self.state.add_user(name)
        return self.state.add_member(guild or self.guild, user, list(roles))

    def add_role(
        self,
        name: str,
        *,
        permissions: int = 0,
        admin: bool = False,
        guild: FakeGuild | None = None,
    ) -> FakeRole:
        return self.state.add_role(guild or self.guild, name, permissions=permissions, admin=admin)

    def add_channel(
        self, name: str, *, type: int = TEXT_CHANNEL, guild: FakeGuild | None = None
    ) -> FakeChannel:
        return self.state.add_channel(guild or self.guild, name, type=type)

    def add_guild(
        self, name: str, *, owner: FakeUser | None = None, with_bot: bool = True
    ) -> FakeGuild:
        guild = self.state.add_guild(name, owner or self.owner)
        if with_bot:
            self.state.add_member(guild, self.bot_user)
        return guild

    def set_roles(self, member: FakeMember, roles: Sequence[FakeRole]) -> None:
        member.role_ids = [r.id for r in roles]

    def add_attachment(
        self, filename: str, data: bytes, content_type: str | None = None
    ) -> StoredFile:
        """A file a user uploads (for an attachment option); served by the CDN route."""
        return self.state.store_file(Upload(0, filename, data, content_type), filename, None, 0)

    async def resync_guild(self, guild: FakeGuild | None = None) -> None:
        """Re-send GUILD_CREATE so a connected client sees roles/members/channels added since."""
        if await self.gateway.guild_create(guild or self.guild) == 0:
            raise RuntimeError("no bot is connected to the fake gateway")

    # ----- gateway ------------------------------------------------------------------------

    async def _broadcast(self, event: str, data: dict[str, Any], intent: int | None) -> None:
        await self.gateway.broadcast(event, data, intent)

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send a raw DISPATCH to every connected session; fails if no bot is connected."""
        sent = await self.gateway.broadcast(event, data)
        if sent == 0:
            raise RuntimeError("no bot is connected to the fake gateway")
        return sent

    async def wait_until_connected(self, timeout: float = 10.0) -> None:
        """Until a session got READY and its GUILD_CREATEs."""
        await self.state.notifier.wait_for(
            lambda: bool(self.gateway.live_sessions()), timeout, "identified gateway session"
        )

    async def drop_gateway(self, code: int = 4000) -> None:
        """Simulate a network drop: discord.py reconnects and RESUMEs."""
        await self.gateway.drop_connections(code)
