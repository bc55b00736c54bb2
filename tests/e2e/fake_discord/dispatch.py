"""Building real INTERACTION_CREATE payloads, and handles to await the bot's answers.

Options are converted using the schema the bot synced (types come from the stored
command, values are nested under subcommand groups/subcommands like Discord's), and
users/members/roles/channels/attachments are added to `resolved`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .messages import FakeMessage, StoredFile
from .models import DM_CHANNEL, FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser
from .records import CallbackRecord
from .state import FakeState, InteractionState, StoredCommand

STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = (
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
)
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2

Principal = FakeUser | FakeMember


def user_of(who: Principal) -> FakeUser:
    return who.user if isinstance(who, FakeMember) else who


class Resolved:
    """Accumulates the `resolved` block of an interaction's data."""

    def __init__(self, state: FakeState, guild: FakeGuild | None, invoker: FakeUser) -> None:
        self.state = state
        self.guild = guild
        self.invoker = invoker
        self.data: dict[str, dict[str, Any]] = {}

    def _put(self, kind: str, key: int, value: dict[str, Any]) -> None:
        self.data.setdefault(kind, {})[str(key)] = value

    def user(self, who: Principal) -> int:
        user = user_of(who)
        self._put("users", user.id, user.payload())
        if self.guild is not None and user.id in self.guild.members:
            member = self.guild.members[user.id]
            perms = self.guild.permissions_for(user.id)
            self._put("members", user.id, member.payload(permissions=perms, with_user=False))
        return user.id

    def role(self, role: FakeRole) -> int:
        self._put("roles", role.id, role.payload())
        return role.id

    def channel(self, channel: FakeChannel) -> int:
        # Discord sends the invoking member's permissions in that channel.
        perms = self.guild.permissions_for(self.invoker.id) if self.guild else 0
        data = {
            "id": str(channel.id),
            "name": channel.name,
            "type": channel.type,
            "permissions": str(perms),
            "parent_id": str(channel.parent_id) if channel.parent_id else None,
        }
        if channel.guild_id is not None:
            data["guild_id"] = str(channel.guild_id)
        self._put("channels", channel.id, data)
        return channel.id

    def attachment(self, stored: StoredFile) -> int:
        self._put("attachments", stored.id, stored.payload())
        return stored.id


def convert_value(kind: int, value: Any, resolved: Resolved | None, name: str) -> Any:
    """A Python value as Discord would send it for this option type."""
    if kind == STRING:
        return str(value)
    if kind == INTEGER:
        return int(value)
    if kind == BOOLEAN:
        return bool(value)
    if kind == NUMBER:
        return float(value)
    if resolved is None:  # autocomplete: ids only, nothing resolved
        return str(getattr(value, "id", value))
    if kind == USER and isinstance(value, FakeUser | FakeMember):
        return str(resolved.user(value))
    if kind == ROLE and isinstance(value, FakeRole):
        return str(resolved.role(value))
    if kind == MENTIONABLE and isinstance(value, FakeUser | FakeMember):
        return str(resolved.user(value))
    if kind == MENTIONABLE and isinstance(value, FakeRole):
        return str(resolved.role(value))
    if kind == CHANNEL and isinstance(value, FakeChannel):
        return str(resolved.channel(value))
    if kind == ATTACHMENT and isinstance(value, StoredFile):
        return str(resolved.attachment(value))
    raise TypeError(f"option {name!r} (type {kind}) cannot take {value!r}")


def build_options(
    schema: list[dict[str, Any]],
    path: Sequence[str],
    values: Mapping[str, Any],
    resolved: Resolved | None,
    focused: str | None = None,
) -> list[dict[str, Any]]:
    """Nest `values` under the subcommand `path`, typed by the synced `schema`."""
    by_name = {o["name"]: o for o in schema}
    if path:
        head = by_name.get(path[0])
        if head is None or int(head.get("type", 0)) not in (SUB_COMMAND, SUB_COMMAND_GROUP):
            raise ValueError(f"no subcommand or group {path[0]!r}; have {sorted(by_name)}")
        inner = build_options(head.get("options") or [], path[1:], values, resolved, focused)
        return [{"type": int(head["type"]), "name": head["name"], "options": inner}]
    if any(int(o.get("type", 0)) in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema):
        raise ValueError(f"this command needs a subcommand path; choose from {sorted(by_name)}")
    out: list[dict[str, Any]] = []
    for name, value in values.items():
        opt = by_name.get(name)
        if opt is None:
            raise ValueError(f"unknown option {name!r}; have {sorted(by_name)}")
        kind = int(opt["type"])
        if name == focused:
            out.append({"type": kind, "name": name, "value": str(value), "focused": True})
            continue
        _check_choice(opt, value)
        out.append(
            {"type": kind, "name": name, "value": convert_value(kind, value, resolved, name)}
        )
    if focused is None:
        missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
        if missing:
            raise ValueError(f"required options missing: {missing}")
    elif focused not in values:
        raise ValueError(f"focused option {focused!r} needs a (partial) value")
    return out


def _check_choice(opt: dict[str, Any], value: Any) -> None:
    choices = opt.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ValueError(f"{value!r} is not a choice of option {opt['name']!r}")


def interaction_payload(
    state: FakeState,
    *,
    iid: int,
    token: str,
    kind: int,
    user: FakeUser,
    guild: FakeGuild | None,
    channel: FakeChannel,
    data: dict[str, Any],
    message: FakeMessage | None = None,
    locale: str = "en-US",
) -> dict[str, Any]:
    world = state.world
    payload: dict[str, Any] = {
        "id": str(iid),
        "application_id": str(world.application_id),
        "type": kind,
        "token": token,
        "version": 1,
        "data": data,
        "locale": locale,
        "entitlements": [],
        "attachment_size_limit": state.config.attachment_size_limit,
    }
    if guild is not None:
        perms = guild.permissions_for(user.id)
        channel_data = channel.payload()
        channel_data["permissions"] = str(perms)
        payload.update(
            guild_id=str(guild.id),
            guild={"id": str(guild.id), "locale": "en-US", "features": []},
            guild_locale="en-US",
            channel_id=str(channel.id),
            channel=channel_data,
            member=guild.members[user.id].payload(permissions=perms),
            app_permissions=str(guild.permissions_for(world.bot.id)),
            authorizing_integration_owners={"0": str(guild.id)},
            context=0,
        )
    else:
        payload.update(
            channel_id=str(channel.id),
            channel=channel.payload(),
            user=user.payload(),
            app_permissions="0",
            authorizing_integration_owners={"0": str(guild.id) if guild else "0"},
            context=1,
        )
    if message is not None:
        payload["message"] = message.payload(state.user)
    return payload


def find_command(
    state: FakeState, name: str, guild: FakeGuild | None, kind: int = 1
) -> StoredCommand:
    """The command the bot synced: guild commands first, then global (Discord shows both)."""
    scopes: list[int | None] = [guild.id] if guild is not None else []
    scopes.append(None)
    for scope in scopes:
        cmd = state.commands.get(scope, {}).get((name, kind))
        if cmd is not None:
            return cmd
    synced = {scope: sorted(k[0] for k in cmds) for scope, cmds in state.commands.items()}
    raise LookupError(f"command {name!r} was not synced (synced: {synced})")


def resolve_place(
    state: FakeState,
    who: Principal,
    guild: FakeGuild | None,
    channel: FakeChannel | None,
    dm: bool,
) -> tuple[FakeUser, FakeGuild | None, FakeChannel]:
    """Defaults: the first guild's first text channel; `dm=True` for the bot's DM channel."""
    user = user_of(who)
    if dm:
        return user, None, channel or state.dm_channel(user)
    if channel is not None and channel.type == DM_CHANNEL:
        return user, None, channel
    if guild is None:
        guild = (
            state.world.guild_of(channel)
            if channel is not None
            else next(iter(state.world.guilds.values()))
        )
    if guild is None:
        raise ValueError("no guild for this interaction")
    if user.id not in guild.members:
        raise ValueError(f"{user.name} is not a member of {guild.name}")
    if channel is None:
        channel = guild.text_channels()[0]
    return user, guild, channel


class InteractionHandle:
    """What a test holds after dispatching an interaction: await the bot's answers here."""

    def __init__(self, state: FakeState, inter: InteractionState) -> None:
        self._state = state
        self.inter = inter

    @property
    def id(self) -> int:
        return self.inter.id

    @property
    def token(self) -> str:
        return self.inter.token

    @property
    def payload(self) -> dict[str, Any]:
        """The INTERACTION_CREATE `d` exactly as dispatched."""
        return self.inter.payload

    @property
    def callbacks(self) -> list[CallbackRecord]:
        """Every callback attempt, rejected ones included."""
        return list(self.inter.callbacks)

    @property
    def original(self) -> FakeMessage | None:
        mid = self.inter.original_message_id
        return self._state.messages.get(mid) if mid is not None else None

    @property
    def followups(self) -> list[FakeMessage]:
        return [self._state.messages[m] for m in self.inter.followup_ids]

    async def response(self, timeout: float = 5.0) -> CallbackRecord:
        """The accepted initial response (callback)."""
        return await self._state.notifier.wait_for(
            self.inter.accepted_callback, timeout, f"accepted response to interaction {self.id}"
        )

    async def first_attempt(self, timeout: float = 5.0) -> CallbackRecord:
        """The first callback attempt, accepted or not (to see a 10062 or 40060)."""

        def first() -> CallbackRecord | None:
            return self.inter.callbacks[0] if self.inter.callbacks else None

        return await self._state.notifier.wait_for(
            first, timeout, f"callback for interaction {self.id}"
        )

    async def message(self, timeout: float = 5.0, *, until: Any = None) -> FakeMessage:
        """The @original message once it is filled in (not "thinking"), or once `until(msg)`."""

        def ready() -> FakeMessage | None:
            msg = self.original
            if msg is None:
                return None
            if until is not None:
                return msg if until(msg) else None
            return None if msg.loading else msg

        return await self._state.notifier.wait_for(ready, timeout, f"original message of {self.id}")

    async def followup(self, index: int = 0, timeout: float = 5.0) -> FakeMessage:
        """The `index`-th follow-up (0-based; a follow-up filling a thinking defer counts)."""

        def nth() -> FakeMessage | None:
            ids = self.inter.followup_ids
            return self._state.messages[ids[index]] if len(ids) > index else None

        return await self._state.notifier.wait_for(nth, timeout, f"follow-up #{index} of {self.id}")

    async def choices(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """An autocomplete's choices."""
        record = await self.response(timeout)
        if record.type != 8:
            raise AssertionError(
                f"expected an autocomplete result, got callback type {record.type}"
            )
        return list(record.data.get("choices") or [])

    async def modal(self, timeout: float = 5.0) -> dict[str, Any]:
        """The modal the bot opened (callback type 9): custom_id, title, components."""
        record = await self.response(timeout)
        if record.type != 9:
            raise AssertionError(f"expected a modal, got callback type {record.type}")
        return record.data

    async def unanswered(self, wait: float) -> bool:
        """True if no response was accepted within `wait` seconds (the "interaction failed")."""
        try:
            await self.response(wait)
        except TimeoutError:
            return True
        return False
