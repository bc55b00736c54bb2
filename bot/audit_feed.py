"""The audit channel: every audit row, as it is written, posted to the channel each guild chose
(`/audit-channel`), through that channel's outbox like log and chat lines.

Rows come up the bus as `AuditRecorded` (core.services.audit publishes them); arguments are
already masked as stored, and every name, argument and result is escaped here, so nobody can
ping, and nothing can break the formatting. One channel per guild, not per server: many
actions (`/perms grant`, refusals in a foreign guild) concern no server. Every channel gets
every row: `/audit` already shows every row to the admins of every served guild.

A row is worded in each channel's language (its guild's preferred locale): the fixed words
(the action, "on", a fixed result such as "unchanged") through the catalogue, while names,
ids, arguments and free-text results stay as they were recorded. A flood file holds the
plain record, in English, as `/audit` stores it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Protocol

import discord

from bot.channel_permissions import check_channels
from bot.embeds import Lang, clean_game_text, strip_terminal
from bot.i18n import tr
from bot.outbox_types import Stream
from bot.services_access import HasServices
from core.errors import InvalidInput
from core.events import AuditRecorded, EventBus, Subscription
from core.services.audit import Actor
from core.supervisor.states import ServerState

if TYPE_CHECKING:
    from bot.channels import ChannelHub


class LanguardBot(HasServices, Protocol):
    """What this module needs of bot.client.LanguardBot (which imports this module, so
    naming that class here would tie the two in a circle)."""

    channel_hub: ChannelHub


__all__ = [
    "AUDIT_ACTIONS",
    "FIXED_RESULTS",
    "AuditFeed",
    "action_text",
    "audit_line",
    "set_audit_channel",
]

_log = logging.getLogger(__name__)

ARGUMENTS_LIMIT = 300
OK_MARK = "✅"
FAILED_MARK = "⛔"
DENIED = "denied:"
STREAM_TITLE = "audit"
"""The audit stream's name when a channel carries several streams (`label` words it)."""

AUDIT_ACTIONS = frozenset(
    {
        "audit.channel",
        "backup.create",
        "backup.delete",
        "backup.restore",
        "backup.settings",
        "mods.add",
        "mods.check",
        "mods.import",
        "mods.maintenance",
        "mods.maintenance.download",
        "mods.maintenance.warn",
        "mods.maintenance.lock",
        "mods.maintenance.kick",
        "mods.maintenance.stop",
        "mods.maintenance.start",
        "mods.maintenance.verify",
        "mods.order",
        "mods.pin",
        "mods.remove",
        "mods.set",
        "mods.update",
        "schedule.backup.add",
        "bans.add",
        "bans.expire",
        "bans.import",
        "bans.remove",
        "channels.bind",
        "channels.unbind",
        "chat.from_discord",
        "denied:guild",
        "maintenance.end",
        "maintenance.start",
        "missions.delete",
        "missions.load",
        "missions.rotation",
        "missions.upload",
        "perms.grant",
        "perms.revoke",
        "players.ban",
        "players.kick",
        "players.say",
        "rcon",
        "schedule.message.add",
        "schedule.remove",
        "schedule.restart.add",
        "schedule.restart.run",
        "server.channels",
        "server.create",
        "server.delete",
        "server.kill",
        "server.restart",
        "server.set",
        "server.start",
        "server.stop",
        "status.post",
    }
)
"""The actions the services audit, each a catalogue entry (`denied:<command>` aside: its
command name stays as typed). An action missing here is shown as recorded."""

FIXED_RESULTS = frozenset(
    {
        *(state.value for state in ServerState),  # a lifecycle command's outcome
        "ok",
        "unchanged",
        "removed",
        "not bound",
        "no such grant",
        "internal error",
        "refused: level too low",
        "refused: too many calls",
        "refused: guild not served",
    }
)
"""Results that are words, not data: translated; any other result is shown as recorded."""


def _arguments(entry: AuditRecorded) -> str:
    text = ", ".join(f"{key}={value}" for key, value in entry.arguments)
    return " ".join(text.split())


def action_text(action: str, locale: Lang = None) -> str:
    """An action as the reader says it (escaped): `server.create` in English."""
    if action in AUDIT_ACTIONS:
        return tr(locale, action)
    if action.startswith(DENIED):
        command = clean_game_text(action.removeprefix(DENIED), 64)
        return tr(locale, "denied:{command}", command=command)
    return clean_game_text(action, 64)


def audit_line(entry: AuditRecorded, server: str, locale: Lang = None) -> tuple[str, str]:
    """(what the channel shows, escaped, in `locale`'s language; what a flood file holds,
    plain)."""
    mark = OK_MARK if entry.ok else FAILED_MARK
    who = clean_game_text(" ".join(entry.actor_name.split()), 64)
    arguments = _arguments(entry)
    details = f" · {clean_game_text(arguments, ARGUMENTS_LIMIT)}" if arguments else ""
    recorded = " ".join(entry.result.split())
    fixed = recorded in FIXED_RESULTS
    result = tr(locale, recorded) if fixed else clean_game_text(recorded, 200)
    action = action_text(entry.action, locale)
    if server:
        shown = tr(
            locale,
            "{mark} **{who}** {action} on **{server}** — {result}{details}",
            mark=mark,
            who=who,
            action=action,
            server=clean_game_text(server, 64),
            result=result,
            details=details,
        )
    else:
        shown = tr(
            locale,
            "{mark} **{who}** {action} — {result}{details}",
            mark=mark,
            who=who,
            action=action,
            result=result,
            details=details,
        )
    raw = strip_terminal(
        f"{'ok' if entry.ok else 'FAILED'} {entry.actor_name} {entry.action}"
        f"{' on ' + server if server else ''}: {entry.result} ({arguments})"
    ).replace("\n", " ")
    return shown, raw


class AuditFeed:
    """Subscribes to `AuditRecorded` at set-up (rows written while the runtime opens queue
    up), posts once `start`ed, re-reads the channels when a binding changes."""

    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot
        self.channels: dict[int, int] = {}
        """guild id → audit channel id."""
        self.stream = Stream(
            key="audit",
            title=STREAM_TITLE,
            filename="audit",
            code=False,
            noun="entries",
            label=lambda locale: tr(locale, "audit"),
        )
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    def listen(self, bus: EventBus) -> None:
        if self._sub is None:
            self._sub = bus.subscribe(AuditRecorded)

    async def start(self) -> None:
        if self._sub is None:
            self.listen(self.bot.services.bus)
        self.bot.services.channels.listeners.append(self.refresh)
        await self.refresh()
        self._task = asyncio.ensure_future(self._pump())
        self._task.set_name("audit-feed")

    async def refresh(self) -> None:
        self.channels = await self.bot.services.channels.audit_channels()

    @property
    def idle(self) -> bool:
        return self._sub is None or self._sub.pending() == 0

    def post(self, entry: AuditRecorded) -> None:
        targets = sorted(set(self.channels.values()))
        if not targets:
            return
        server = ""
        if entry.server_id:
            names = self.bot.services.servers.names_by_id()
            server = names.get(entry.server_id, f"#{entry.server_id}")
        worded: dict[str | None, tuple[str, str]] = {}
        for channel_id in targets:
            outbox = self.bot.channel_hub.outbox(channel_id)
            locale = outbox.locale
            if locale not in worded:
                worded[locale] = audit_line(entry, server, locale)
            shown, raw = worded[locale]
            outbox.add_lines(self.stream, [shown], raws=[raw])

    async def _pump(self) -> None:
        sub = self._sub
        assert sub is not None
        while True:
            try:
                event = await sub.get()
            except StopAsyncIteration:
                return
            if not isinstance(event, AuditRecorded):
                continue
            try:
                self.post(event)
            except Exception:  # one bad row must not stop the feed
                _log.exception("audit row %d not posted", event.entry_id)

    def stop(self) -> None:
        """Stop taking rows, without yielding to the loop: the bot calls it just before the
        channel hub closes, so nothing is posted into an outbox being closed."""
        if self._sub is not None:
            self._sub.close()
        channels = getattr(self.bot.runtime, "channels", None)  # resync runs without it
        if channels is not None:
            listeners = channels.listeners
            if self.refresh in listeners:
                listeners.remove(self.refresh)
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        self.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


# ----- /audit-channel ---------------------------------------------------------------------


async def set_audit_channel(
    bot: LanguardBot,
    actor: Actor,
    guild_id: int,
    channel: discord.abc.GuildChannel | None,
    off: bool,
    locale: Lang = None,
) -> str:
    """What `/audit-channel` does (admin level, checked by the command); the reply, in the
    member's `locale` (refusals are InvalidInput templates: the tree's handler words them)."""
    channels = bot.services.channels
    if channel is not None and off:
        raise InvalidInput("Give a channel or `off`, not both.")
    if off:
        await channels.set_audit_channel(actor, guild_id, None)
        return tr(locale, "Audited actions are no longer posted in a channel.")
    if channel is None:
        current = (await channels.audit_channels()).get(guild_id)
        if current is None:
            return tr(locale, "No audit channel is set; `/audit-channel channel:#…` sets one.")
        return tr(
            locale,
            "Audited actions are posted in <#{channel_id}>; `/audit-channel off:True` stops it.",
            channel_id=current,
        )
    problems = check_channels({"chat": channel})  # plain text, a flood as a file: as chat
    if problems:
        raise InvalidInput(
            "I cannot post in {channel}: I lack {missing}. Give my role these permissions in "
            "the channel's settings → Permissions, then run `/audit-channel` again.",
            channel=channel.mention,
            missing=", ".join(tr(locale, name) for name in problems[0].missing),
        )
    await channels.set_audit_channel(actor, guild_id, channel.id)
    return tr(locale, "Every audited action is now posted in {channel}.", channel=channel.mention)
