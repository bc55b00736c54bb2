"""The audit channel: every audit row, as it is written, posted to the channel each guild chose
(`/audit-channel`), through that channel's outbox like log and chat lines.

Rows come up the bus as `AuditRecorded` (core.services.audit publishes them); arguments are
already masked as stored, and every name, argument and result is escaped here, so nobody can
ping, and nothing can break the formatting. One channel per guild, not per server: many
actions (`/perms grant`, refusals in a foreign guild) concern no server. Every channel gets
every row: `/audit` already shows every row to the admins of every served guild.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Protocol

import discord

from bot.channel_permissions import check_channels
from bot.embeds import clean_game_text, strip_terminal
from bot.outbox import Stream
from bot.services_access import HasServices
from core.errors import InvalidInput
from core.events import AuditRecorded, EventBus, Subscription
from core.services.audit import Actor

if TYPE_CHECKING:
    from bot.channels import ChannelHub


class LanguardBot(HasServices, Protocol):
    """What this module needs of bot.client.LanguardBot (which imports this module, so
    naming that class here would tie the two in a circle)."""

    channel_hub: ChannelHub


__all__ = ["AuditFeed", "audit_line", "set_audit_channel"]

_log = logging.getLogger(__name__)

ARGUMENTS_LIMIT = 300
OK_MARK = "✅"
FAILED_MARK = "⛔"
STREAM_TITLE = "audit"


def _arguments(entry: AuditRecorded) -> str:
    text = ", ".join(f"{key}={value}" for key, value in entry.arguments)
    return " ".join(text.split())


def audit_line(entry: AuditRecorded, server: str) -> tuple[str, str]:
    """(what the channel shows, escaped; what a flood file holds, plain)."""
    mark = OK_MARK if entry.ok else FAILED_MARK
    who = clean_game_text(" ".join(entry.actor_name.split()), 64)
    where = f" on **{clean_game_text(server, 64)}**" if server else ""
    arguments = _arguments(entry)
    details = f" · {clean_game_text(arguments, ARGUMENTS_LIMIT)}" if arguments else ""
    result = clean_game_text(" ".join(entry.result.split()), 200)
    action = clean_game_text(entry.action, 64)
    shown = f"{mark} **{who}** {action}{where} — {result}{details}"
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
            key="audit", title=STREAM_TITLE, filename="audit", code=False, noun="entries"
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
            found = [s.name for s in self.bot.services.supervisor.all() if s.id == entry.server_id]
            server = found[0] if found else f"#{entry.server_id}"
        shown, raw = audit_line(entry, server)
        for channel_id in targets:
            self.bot.channel_hub.outbox(channel_id).add_lines(self.stream, [shown], raws=[raw])

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

CHANNEL_SET = "Every audited action is now posted in {channel}."
CHANNEL_OFF = "Audited actions are no longer posted in a channel."
CHANNEL_NONE = "No audit channel is set; `/audit-channel channel:#…` sets one."
CHANNEL_SHOWN = "Audited actions are posted in <#{channel_id}>; `/audit-channel off:True` stops it."
CHANNEL_REFUSED = (
    "I cannot post in {channel}: I lack {missing}. Give my role these permissions in the "
    "channel's settings → Permissions, then run `/audit-channel` again."
)
CHANNEL_BOTH = "Give a channel or `off`, not both."


async def set_audit_channel(
    bot: LanguardBot,
    actor: Actor,
    guild_id: int,
    channel: discord.abc.GuildChannel | None,
    off: bool,
) -> str:
    """What `/audit-channel` does (admin level, checked by the command); the reply."""
    channels = bot.services.channels
    if channel is not None and off:
        raise InvalidInput(CHANNEL_BOTH)
    if off:
        await channels.set_audit_channel(actor, guild_id, None)
        return CHANNEL_OFF
    if channel is None:
        current = (await channels.audit_channels()).get(guild_id)
        return CHANNEL_NONE if current is None else CHANNEL_SHOWN.format(channel_id=current)
    problems = check_channels({"chat": channel})  # plain text, a flood as a file: as chat
    if problems:
        raise InvalidInput(
            CHANNEL_REFUSED.format(channel=channel.mention, missing=", ".join(problems[0].missing))
        )
    await channels.set_audit_channel(actor, guild_id, channel.id)
    return CHANNEL_SET.format(channel=channel.mention)
