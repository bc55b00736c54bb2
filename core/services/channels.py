"""Which Discord channel gets what of a server: logs, alerts, a status embed, in-game chat;
and, per guild, which channel mirrors the audit log.

The service only stores and validates (core knows nothing of Discord); the bot's channel
hub listens for changes and re-wires its streams. Every change is audited.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from core.errors import InvalidInput
from core.services.audit import Actor, AuditLog
from core.supervisor.supervisor import Supervisor
from data.repositories.bindings import BindingRepository, StatusMessage, StoredBinding

__all__ = [
    "Binding",
    "ChannelKind",
    "ChannelService",
    "LogFilter",
    "channel_consumer",
]

_log = logging.getLogger(__name__)

MAX_SNOWFLAKE = (1 << 63) - 1


class ChannelKind(StrEnum):
    LOGS = "logs"
    ALERTS = "alerts"
    STATUS = "status"
    CHAT = "chat"


class LogFilter(StrEnum):
    ALL = "all"
    WARNINGS = "warnings"
    """Warnings and errors only."""


def channel_consumer(channel_id: int) -> str:
    """The log-offset consumer name of a channel's cursor."""
    return f"channel:{channel_id}"


@dataclass(frozen=True, slots=True)
class Binding:
    server_id: int
    kind: ChannelKind
    channel_id: int
    log_filter: LogFilter = LogFilter.ALL
    """Only meaningful for `logs`."""
    alert_role: int | None = None
    """Only meaningful for `alerts`: the role mentioned when a crash loop is given up."""

    @classmethod
    def from_stored(cls, stored: StoredBinding) -> Binding | None:
        try:
            kind = ChannelKind(stored.kind)
            log_filter = LogFilter(stored.options.get("filter", LogFilter.ALL.value))
        except ValueError:
            _log.warning("ignoring a malformed channel binding: %r", stored)
            return None
        role = stored.options.get("role_id")
        return cls(
            stored.server_id,
            kind,
            stored.channel_id,
            log_filter,
            role if isinstance(role, int) and role > 0 else None,
        )

    def options(self) -> dict[str, Any]:
        if self.kind is ChannelKind.LOGS:
            return {"filter": self.log_filter.value}
        if self.kind is ChannelKind.ALERTS and self.alert_role:
            return {"role_id": self.alert_role}
        return {}


ChangeListener = Callable[[], Awaitable[None]]


_IdOf = ChannelKind | Literal["alert role", "guild", "audit channel"]
"""What an id names: a channel of a server (by its kind), the alert role, the guild, or the
audit channel; it picks the refusal's words."""


def _snowflake(value: int | None, what: _IdOf) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_SNOWFLAKE:
        raise _invalid_id(what)
    return value


def _invalid_id(what: _IdOf) -> InvalidInput:
    if what is ChannelKind.LOGS:
        return InvalidInput("the logs channel is not a valid Discord id")
    if what is ChannelKind.ALERTS:
        return InvalidInput("the alerts channel is not a valid Discord id")
    if what is ChannelKind.STATUS:
        return InvalidInput("the status channel is not a valid Discord id")
    if what is ChannelKind.CHAT:
        return InvalidInput("the chat channel is not a valid Discord id")
    if what == "guild":
        return InvalidInput("the guild is not a valid Discord id")
    if what == "audit channel":
        return InvalidInput("the audit channel is not a valid Discord id")
    return InvalidInput("the alert role is not a valid Discord id")


def _parse_filter(value: str | LogFilter | None) -> LogFilter | None:
    if value is None:
        return None
    try:
        return LogFilter(str(value).strip().lower())
    except ValueError:
        raise InvalidInput("the log filter is `all` or `warnings`") from None


def _parse_kinds(kinds: Iterable[str | ChannelKind]) -> set[ChannelKind]:
    parsed: set[ChannelKind] = set()
    for kind in kinds:
        try:
            parsed.add(ChannelKind(str(kind).strip().lower()))
        except ValueError:
            raise InvalidInput(
                "`{kind}` is not a channel kind (logs, alerts, status, chat)", kind=kind
            ) from None
    return parsed


class ChannelService:
    """Bind, unbind and list channels per server; listeners hear about every change."""

    def __init__(
        self, repository: BindingRepository, audit: AuditLog, supervisor: Supervisor
    ) -> None:
        self.repository = repository
        self._audit = audit
        self._sup = supervisor
        self.listeners: builtins.list[ChangeListener] = []
        """Awaited after each change (the bot's channel hub re-wires itself)."""

    async def list(self, server_id: int | None = None) -> builtins.list[Binding]:
        stored = await self.repository.bindings(server_id)
        return [b for b in map(Binding.from_stored, stored) if b is not None]

    # -- what the bot's channel hub reads and saves --------------------------------------

    async def channel_cursors(self, server_id: int, channel_id: int) -> dict[str, tuple[str, int]]:
        """Per log source: (file id, offset) of the last line the channel has on Discord."""
        consumer = channel_consumer(channel_id)
        stored = await self._sup.offsets.load(server_id)
        return {o.source: (o.file_id, o.offset) for o in stored if o.consumer == consumer}

    async def save_channel_cursor(
        self, server_id: int, channel_id: int, source: str, file_id: str, offset: int
    ) -> None:
        """Discord accepted the lines up to `offset`: a restart resumes the channel there."""
        await self._sup.offsets.save(
            server_id, source, channel_consumer(channel_id), file_id, offset
        )

    async def forget_channel_cursors(self, server_id: int, channel_id: int) -> None:
        """The channel no longer takes this server's logs: stop holding its place in them."""
        await self.repository.forget_cursors(server_id, channel_consumer(channel_id))

    async def status_messages(self) -> builtins.list[StatusMessage]:
        """The live status messages (server, channel, message id) the bot edits."""
        return await self.repository.status_messages()

    async def set_status_message(self, server_id: int, channel_id: int, message_id: int) -> None:
        await self.repository.set_status_message(server_id, channel_id, message_id)

    async def bind(
        self,
        actor: Actor,
        server_id: int,
        kind: ChannelKind | str,
        channel_id: int,
        *,
        log_filter: LogFilter | str | None = None,
        alert_role: int | None = None,
    ) -> Binding:
        """Send `kind` of this server to the channel (replacing the previous channel)."""
        parsed = _parse_kinds([kind]).pop()
        binding = await self._bind(server_id, parsed, channel_id, log_filter, alert_role)
        await self._audit.record(
            actor,
            "channels.bind",
            server_id=server_id,
            arguments={"kind": parsed.value, "channel_id": channel_id, **binding.options()},
        )
        await self._notify()
        return binding

    async def unbind(self, actor: Actor, server_id: int, kind: ChannelKind | str) -> bool:
        parsed = _parse_kinds([kind]).pop()
        removed = await self._unbind(server_id, parsed)
        await self._audit.record(
            actor,
            "channels.unbind",
            server_id=server_id,
            arguments={"kind": parsed.value},
            result="removed" if removed else "not bound",
            ok=removed,
        )
        if removed:
            await self._notify()
        return removed

    async def set_channels(
        self,
        actor: Actor,
        server_name: str,
        logs: int | None = None,
        alerts: int | None = None,
        status: int | None = None,
        chat: int | None = None,
        log_filter: LogFilter | str | None = None,
        alert_role: int | None = None,
        *,
        unbind: Iterable[ChannelKind | str] = (),
    ) -> builtins.list[Binding]:
        """What `/server channels` does: set the given kinds, leave the others, return them all.

        `log_filter` / `alert_role` alone change the options of the existing binding;
        `unbind` names kinds to remove. Everything is validated before anything changes.
        """
        server = self._sup.by_name(server_name)
        wanted: dict[ChannelKind, int | None] = {
            ChannelKind.LOGS: _snowflake(logs, ChannelKind.LOGS),
            ChannelKind.ALERTS: _snowflake(alerts, ChannelKind.ALERTS),
            ChannelKind.STATUS: _snowflake(status, ChannelKind.STATUS),
            ChannelKind.CHAT: _snowflake(chat, ChannelKind.CHAT),
        }
        parsed_filter = _parse_filter(log_filter)
        role = _snowflake(alert_role, "alert role")
        removing = _parse_kinds(unbind)
        clash = [k.value for k in removing if wanted[k] is not None]
        if clash:
            raise InvalidInput(
                "cannot both set and remove the {kinds} channel", kinds=", ".join(sorted(clash))
            )
        current = {b.kind: b for b in await self.list(server.id)}
        for kind, value in ((ChannelKind.LOGS, parsed_filter), (ChannelKind.ALERTS, role)):
            if value is not None and (
                kind in removing or (wanted[kind] is None and kind not in current)
            ):
                if kind is ChannelKind.LOGS:
                    raise InvalidInput("set a logs channel to use the log filter")
                raise InvalidInput("set a alerts channel to use the alert role")
        if not removing and parsed_filter is None and role is None and not any(wanted.values()):
            raise InvalidInput("name at least one channel (logs, alerts, status or chat)")
        changes: dict[str, Any] = {}
        async with self.repository.transaction():
            for kind, channel_id in wanted.items():
                old = current.get(kind)
                if channel_id is None and old is not None and kind not in removing:
                    touched = (kind is ChannelKind.LOGS and parsed_filter is not None) or (
                        kind is ChannelKind.ALERTS and role is not None
                    )
                    channel_id = old.channel_id if touched else None
                if channel_id is None:
                    continue
                # each option belongs to its own kind: a filter never reaches the alerts row
                kind_filter = parsed_filter if kind is ChannelKind.LOGS else None
                kind_role = role if kind is ChannelKind.ALERTS else None
                await self._bind(
                    server.id,
                    kind,
                    channel_id,
                    kind_filter or (old.log_filter if old else None),
                    kind_role or (old.alert_role if old else None),
                )
                changes[kind.value] = channel_id
            for kind in removing:
                changes[f"unbind_{kind.value}"] = await self._unbind(server.id, kind)
        if parsed_filter is not None:
            changes["log_filter"] = parsed_filter.value
        if role is not None:
            changes["alert_role"] = role
        await self._audit.record(actor, "server.channels", server_id=server.id, arguments=changes)
        await self._notify()
        return await self.list(server.id)

    # -- the audit channel ---------------------------------------------------------------

    async def audit_channels(self) -> dict[int, int]:
        """guild id → the channel that mirrors every audit row (guild-wide, not per server:
        actions such as `/perms grant` concern no server)."""
        return await self.repository.audit_channels()

    async def set_audit_channel(self, actor: Actor, guild_id: int, channel_id: int | None) -> bool:
        """Mirror the audit log into `channel_id` (None: stop). False when nothing changed.

        The row of a change is written while the old channel still mirrors an `off`, and
        after the new one does a set: a channel shows who bound it, and who unbound it."""
        guild = _snowflake(guild_id, "guild")
        channel = _snowflake(channel_id, "audit channel")
        assert guild is not None
        changed = (await self.audit_channels()).get(guild) != channel
        arguments = {"channel_id": channel or "off"}
        result = "ok" if changed else "unchanged"
        if channel is None:
            await self._audit.record(actor, "audit.channel", arguments=arguments, result=result)
            if changed:
                await self.repository.delete_audit_channel(guild)
                await self._notify()
            return changed
        if changed:
            await self.repository.set_audit_channel(guild, channel)
            await self._notify()
        await self._audit.record(actor, "audit.channel", arguments=arguments, result=result)
        return changed

    # -- internals -----------------------------------------------------------------------

    async def _bind(
        self,
        server_id: int,
        kind: ChannelKind,
        channel_id: int,
        log_filter: LogFilter | str | None,
        alert_role: int | None,
    ) -> Binding:
        channel = _snowflake(channel_id, kind)
        assert channel is not None
        parsed_filter = _parse_filter(log_filter)
        role = _snowflake(alert_role, "alert role")
        if parsed_filter is not None and kind is not ChannelKind.LOGS:
            raise InvalidInput("the log filter applies to the logs channel only")
        if role is not None and kind is not ChannelKind.ALERTS:
            raise InvalidInput("the alert role applies to the alerts channel only")
        self._sup.get(server_id)  # NotFound for an unknown server
        old = await self.repository.get(server_id, kind.value)
        binding = Binding(server_id, kind, channel, parsed_filter or LogFilter.ALL, role)
        await self.repository.set(server_id, kind.value, channel, binding.options())
        if kind is ChannelKind.LOGS and old is not None and old.channel_id != channel:
            await self.repository.forget_cursors(server_id, channel_consumer(old.channel_id))
        if kind is ChannelKind.STATUS and old is not None and old.channel_id != channel:
            await self.repository.delete_status_message(server_id, old.channel_id)
        return binding

    async def _unbind(self, server_id: int, kind: ChannelKind) -> bool:
        old = await self.repository.get(server_id, kind.value)
        if old is None:
            return False
        await self.repository.delete(server_id, kind.value)
        if kind is ChannelKind.LOGS:
            await self.repository.forget_cursors(server_id, channel_consumer(old.channel_id))
        if kind is ChannelKind.STATUS:
            await self.repository.delete_status_message(server_id, old.channel_id)
        return True

    async def _notify(self) -> None:
        for listener in tuple(self.listeners):
            try:
                await listener()
            except Exception:  # a listener's bug must not undo a stored change
                _log.exception("channel binding listener failed")
