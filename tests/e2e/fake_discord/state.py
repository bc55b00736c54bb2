"""The fake's memory: world, messages, commands, interactions, records, configuration."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .bodies import Upload
from .clock import Clock, Snowflakes
from .errors import UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, not_found
from .messages import FakeMessage, StoredFile
from .models import (
    ADMINISTRATOR,
    DM_CHANNEL,
    EVERYONE_DEFAULT,
    TEXT_CHANNEL,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    World,
)
from .ratelimit import RateLimits
from .records import CallbackRecord, GatewayConnection, Notifier, RequestRecord, SyncRecord

# Gateway intents that gate the events the fake dispatches.
GUILDS_INTENT = 1 << 0
GUILD_MEMBERS_INTENT = 1 << 1
GUILD_MESSAGES_INTENT = 1 << 9
DIRECT_MESSAGES_INTENT = 1 << 12
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)

Broadcast = Callable[[str, dict[str, Any], int | None], Awaitable[None]]


@dataclass
class FakeConfig:
    """Knobs. Shorten the deadlines to test them quickly; or advance the clock instead."""

    interaction_deadline: float = 3.0
    token_lifetime: float = 15 * 60.0
    heartbeat_interval_ms: int = 41_250
    # Send MESSAGE_CREATE/UPDATE/DELETE for the bot's own non-ephemeral messages (as Discord does).
    dispatch_message_events: bool = True
    # Privileged intents "enabled in the developer portal"; others close the gateway with 4014.
    privileged_intents: int = PRIVILEGED_INTENTS
    attachment_size_limit: int = 10 * 1024 * 1024
    # Fail the test (at teardown) when the bot hit a route the fake does not implement.
    strict_routes: bool = True
    # An outage: every API route answers this status (e.g. 503) until set back to None.
    outage_status: int | None = None


@dataclass(eq=False)
class StoredCommand:
    id: int
    guild_id: int | None
    version: int
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def type(self) -> int:
        return int(self.data.get("type", 1))

    def payload(self, application_id: int) -> dict[str, Any]:
        out = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **self.data,
            "id": str(self.id),
            "application_id": str(application_id),
            "version": str(self.version),
        }
        if self.guild_id is not None:
            out["guild_id"] = str(self.guild_id)
        return out


@dataclass(eq=False)
class InteractionState:
    """The server side of one interaction: its token, deadline and what the bot answered."""

    id: int
    token: str
    type: int
    created_at: float
    user: FakeUser
    channel: FakeChannel
    guild_id: int | None
    payload: dict[str, Any]
    command_name: str | None = None
    message_id: int | None = None  # the message a component sits on
    response_type: int | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    callbacks: list[CallbackRecord] = field(default_factory=list)
    thinking_pending: bool = False  # a thinking defer whose message the first follow-up fills

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None

    def accepted_callback(self) -> CallbackRecord | None:
        return next((c for c in self.callbacks if c.accepted), None)


class FakeState:
    def __init__(self, token: str, clock: Clock, config: FakeConfig) -> None:
        self.token = token
        self.clock = clock
        self.config = config
        self.ids = Snowflakes(clock)
        self.notifier = Notifier()
        self.ratelimits = RateLimits(clock)
        self.base_url = ""  # set once the server listens
        self.broadcast: Broadcast | None = None

        self.messages: dict[int, FakeMessage] = {}
        self.channel_log: dict[int, list[int]] = {}
        self.cdn: dict[int, StoredFile] = {}
        self.commands: dict[int | None, dict[tuple[str, int], StoredCommand]] = {}
        self.interactions: dict[int, InteractionState] = {}
        self.interactions_by_token: dict[str, InteractionState] = {}

        self.requests: list[RequestRecord] = []
        self.callbacks: list[CallbackRecord] = []
        self.syncs: list[SyncRecord] = []
        self.gateway_connections: list[GatewayConnection] = []
        self.gateway_received: list[dict[str, Any]] = []
        self.unhandled: list[RequestRecord] = []
        self.cdn_fetches: list[tuple[str, float]] = []  # (path, arrived_at) of CDN downloads
        self.internal_errors: list[str] = []

        self.world = self._default_world()

    # ----- world building ---------------------------------------------------------------

    def _default_world(self) -> World:
        bot = FakeUser(self.ids.next(), "Languard", bot=True)
        owner = FakeUser(self.ids.next(), "owner")
        flags = (1 << 15) | (1 << 19) | (1 << 23)  # members-limited, content-limited, badge
        world = World(bot=bot, application_id=bot.id, application_flags=flags, app_owner=owner)
        for user in (bot, owner):
            world.users[user.id] = user
        guild = self.add_guild("Test Guild", owner, world=world)
        self.add_member(guild, bot, world=world)
        return world

    def add_user(self, name: str, *, bot: bool = False) -> FakeUser:
        user = FakeUser(self.ids.next(), name, bot=bot)
        self.world.users[user.id] = user
        return user

    def add_guild(self, name: str, owner: FakeUser, *, world: World | None = None) -> FakeGuild:
        world = world or self.world
        gid = self.ids.next()
        guild = FakeGuild(gid, name, owner.id)
        guild.roles[gid] = FakeRole(gid, gid, "@everyone", permissions=EVERYONE_DEFAULT)
        guild.members[owner.id] = FakeMember(owner, gid)
        world.guilds[gid] = guild
        self.add_channel(guild, "general", world=world)
        return guild

    def add_channel(
        self,
        guild: FakeGuild,
        name: str,
        *,
        type: int = TEXT_CHANNEL,
        parent: FakeChannel | None = None,
        world: World | None = None,
    ) -> FakeChannel:
        world = world or self.world
        channel = FakeChannel(
            self.ids.next(),
            name,
            type=type,
            guild_id=guild.id,
            position=len(guild.channels),
            parent_id=parent.id if parent else None,
        )
        guild.channels[channel.id] = channel
        world.channels[channel.id] = channel
        return channel

    def add_role(
        self, guild: FakeGuild, name: str, *, permissions: int = 0, admin: bool = False
    ) -> FakeRole:
        perms = permissions | (ADMINISTRATOR if admin else 0)
        role = FakeRole(
            self.ids.next(), guild.id, name, permissions=perms, position=len(guild.roles)
        )
        guild.roles[role.id] = role
        return role

    def add_member(
        self,
        guild: FakeGuild,
        user: FakeUser,
        roles: list[FakeRole] | None = None,
        *,
        world: World | None = None,
    ) -> FakeMember:
        (world or self.world).users[user.id] = user
        member = FakeMember(user, guild.id, [r.id for r in roles or []])
        guild.members[user.id] = member
        return member

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        for channel in self.world.channels.values():
            if channel.type == DM_CHANNEL and channel.recipients == [user]:
                return channel
        channel = FakeChannel(self.ids.next(), "", type=DM_CHANNEL, recipients=[user])
        self.world.channels[channel.id] = channel
        return channel

    # ----- lookups ----------------------------------------------------------------------

    def channel(self, channel_id: int) -> FakeChannel:
        try:
            return self.world.channels[channel_id]
        except KeyError:
            raise not_found(UNKNOWN_CHANNEL, "Channel") from None

    def message(self, channel_id: int, message_id: int) -> FakeMessage:
        msg = self.messages.get(message_id)
        if msg is None or msg.deleted or msg.channel_id != channel_id:
            raise not_found(UNKNOWN_MESSAGE, "Message")
        return msg

    def user(self, user_id: int) -> FakeUser | None:
        return self.world.users.get(user_id)

    def channel_messages(self, channel_id: int) -> list[FakeMessage]:
        return [self.messages[m] for m in self.channel_log.get(channel_id, [])]

    # ----- messages and files -----------------------------------------------------------

    def store_file(
        self, upload: Upload, filename: str | None, description: str | None, channel_id: int
    ) -> StoredFile:
        fid = self.ids.next()
        name = filename or upload.filename
        url = f"{self.base_url}/attachments/{channel_id}/{fid}/{quote(name)}"
        stored = StoredFile(fid, name, upload.data, url, upload.content_type, description)
        self.cdn[fid] = stored
        return stored

    def new_message(self, channel: FakeChannel, author: FakeUser) -> FakeMessage:
        return FakeMessage(
            id=self.ids.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            created_at=self.clock.now(),
            timestamp=self.clock.iso(),
        )

    def commit_message(self, msg: FakeMessage) -> None:
        self.messages[msg.id] = msg
        self.channel_log.setdefault(msg.channel_id, []).append(msg.id)
        self.notifier.notify()

    async def announce(self, event: str, msg: FakeMessage) -> None:
        """MESSAGE_CREATE/UPDATE/DELETE over the gateway, as Discord would send them."""
        if self.broadcast is None or not self.config.dispatch_message_events or msg.ephemeral:
            return
        intent = GUILD_MESSAGES_INTENT if msg.guild_id is not None else DIRECT_MESSAGES_INTENT
        if event == "MESSAGE_DELETE":
            data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
        else:
            data = msg.payload(self.user)
        await self.broadcast(event, data, intent)

    # ----- interactions -----------------------------------------------------------------

    def new_interaction(
        self,
        type: int,
        user: FakeUser,
        channel: FakeChannel,
        guild_id: int | None,
        payload_builder: Callable[[int, str], dict[str, Any]],
        **extra: Any,
    ) -> InteractionState:
        iid = self.ids.next()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(24)
        payload = payload_builder(iid, token)
        state = InteractionState(
            id=iid,
            token=token,
            type=type,
            created_at=self.clock.now(),
            user=user,
            channel=channel,
            guild_id=guild_id,
            payload=payload,
            **extra,
        )
        self.interactions[iid] = state
        self.interactions_by_token[token] = state
        return state
