"""The fake's world: users, guilds, roles, channels, members, and their wire payloads.

Payloads follow Discord's v10 objects closely enough for discord.py's parsers (which
read some keys unconditionally), not byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import discord

ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value
VIEW_CHANNEL = discord.Permissions(view_channel=True).value
SEND_MESSAGES = discord.Permissions(send_messages=True).value
EMBED_LINKS = discord.Permissions(embed_links=True).value
ATTACH_FILES = discord.Permissions(attach_files=True).value
READ_MESSAGE_HISTORY = discord.Permissions(read_message_history=True).value
MEMBER_OVERWRITE = 1
# What @everyone gets in a fresh guild, roughly: read, write, use commands.
EVERYONE_DEFAULT = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_application_commands=True,
    connect=True,
    speak=True,
).value

TEXT_CHANNEL = 0
DM_CHANNEL = 1
VOICE_CHANNEL = 2
CATEGORY_CHANNEL = 4

JOINED_AT = "2024-01-01T00:00:00+00:00"


@dataclass(eq=False)
class FakeUser:
    id: int
    name: str
    bot: bool = False
    global_name: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
            "system": False,
        }


@dataclass(eq=False)
class FakeRole:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {
                "primary_color": self.color,
                "secondary_color": None,
                "tertiary_color": None,
            },
            "hoist": self.hoist,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeChannel:
    id: int
    name: str
    type: int = TEXT_CHANNEL
    guild_id: int | None = None
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    recipients: list[FakeUser] = field(default_factory=list)
    # Permission bits the bot is denied here, e.g. SEND_MESSAGES. The REST routes enforce it
    # and the channel payload carries it as a member overwrite for the bot (when the payload
    # is given `bot_user_id`), so discord.py's `permissions_for(guild.me)` sees the same.
    # After changing it on a connected client, push `payload(bot_user_id=...)` as a
    # CHANNEL_UPDATE (or `resync_guild()`), as Discord would.
    bot_denied: int = 0

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    def overwrites(self, bot_user_id: int | None) -> list[dict[str, Any]]:
        """Discord's `permission_overwrites`: the bot's denial as a member overwrite."""
        if not self.bot_denied or bot_user_id is None:
            return []
        return [
            {
                "id": str(bot_user_id),
                "type": MEMBER_OVERWRITE,
                "allow": "0",
                "deny": str(self.bot_denied),
            }
        ]

    def payload(
        self, *, with_guild_id: bool = True, bot_user_id: int | None = None
    ) -> dict[str, Any]:
        if self.type == DM_CHANNEL:
            return {
                "id": str(self.id),
                "type": DM_CHANNEL,
                "last_message_id": None,
                "recipients": [u.payload() for u in self.recipients],
            }
        out: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "name": self.name,
            "position": self.position,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "permission_overwrites": self.overwrites(bot_user_id),
            "nsfw": False,
            "flags": 0,
        }
        if self.type == TEXT_CHANNEL:
            out.update(topic=self.topic, last_message_id=None, rate_limit_per_user=0)
        if self.type == VOICE_CHANNEL:
            out.update(bitrate=64000, user_limit=0, rtc_region=None)
        if with_guild_id and self.guild_id is not None:
            out["guild_id"] = str(self.guild_id)
        return out


@dataclass(eq=False)
class FakeMember:
    user: FakeUser
    guild_id: int
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def mention(self) -> str:
        return self.user.mention

    def payload(self, *, permissions: int | None = None, with_user: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "roles": [str(r) for r in self.role_ids],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": JOINED_AT,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            out["user"] = self.user.payload()
        if permissions is not None:
            out["permissions"] = str(permissions)
        return out


@dataclass(eq=False)
class FakeGuild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    preferred_locale: str = "en-US"
    """Server Settings → Community → Server Primary Language, as GUILD_CREATE carries it."""

    @property
    def everyone(self) -> FakeRole:
        return self.roles[self.id]

    def text_channels(self) -> list[FakeChannel]:
        return [c for c in self.channels.values() if c.type == TEXT_CHANNEL]

    def channel_named(self, name: str) -> FakeChannel:
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise KeyError(f"no channel named {name!r} in guild {self.name!r}")

    def role_named(self, name: str) -> FakeRole:
        for role in self.roles.values():
            if role.name == name:
                return role
        raise KeyError(f"no role named {name!r} in guild {self.name!r}")

    def permissions_for(self, user_id: int, channel: FakeChannel | None = None) -> int:
        """Guild-level permissions (owner and administrator get everything), less what a
        bot user is denied in `channel` (`FakeChannel.bot_denied`, the only overwrite modelled).
        """
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.members.get(user_id)
        if member is None:
            return 0
        perms = self.everyone.permissions
        for role_id in member.role_ids:
            role = self.roles.get(role_id)
            if role is not None:
                perms |= role.permissions
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        if channel is not None and member.user.bot:
            perms &= ~channel.bot_denied
        return perms

    def payload(
        self, *, for_gateway: bool, bot_user_id: int, all_members: bool = True
    ) -> dict[str, Any]:
        """REST or GUILD_CREATE shape. Without the members intent Discord's GUILD_CREATE
        carries only the bot's own member (`all_members=False`)."""
        out: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.preferred_locale,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "features": [],
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "vanity_url_code": None,
            "premium_progress_bar_enabled": False,
        }
        if for_gateway:
            bot = self.members.get(bot_user_id)
            out.update(
                unavailable=False,
                large=False,
                joined_at=JOINED_AT,
                member_count=len(self.members),
                members=[
                    m.payload() for m in self.members.values() if all_members or m.id == bot_user_id
                ],
                channels=[
                    c.payload(with_guild_id=False, bot_user_id=bot_user_id)
                    for c in self.channels.values()
                ],
                threads=[],
                voice_states=[],
                presences=[],
                stage_instances=[],
                guild_scheduled_events=[],
                soundboard_sounds=[],
            )
            if bot is None:
                raise ValueError("the bot is not a member of this guild")
        return out


@dataclass(eq=False)
class World:
    """Everything the fake knows about, with handy names for the default cast."""

    bot: FakeUser
    application_id: int
    application_flags: int
    app_owner: FakeUser
    users: dict[int, FakeUser] = field(default_factory=dict)
    guilds: dict[int, FakeGuild] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)

    def guild_of(self, channel: FakeChannel) -> FakeGuild | None:
        if channel.guild_id is None:
            return None
        return self.guilds[channel.guild_id]

    def bot_guilds(self) -> list[FakeGuild]:
        return [g for g in self.guilds.values() if self.bot.id in g.members]
