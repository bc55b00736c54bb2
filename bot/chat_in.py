"""Two-way chat, the Discord → game half: moderators' messages in a server's chat channel are
said in the game (off unless LANGUARD_CHAT_FROM_DISCORD=true: it needs the privileged
Message Content intent).

Who may speak: a member at moderator level or above for that server, in a guild the bot
serves. Bots and webhooks never are, so the bot's own relay of game chat into the same
channel cannot loop back into the game.

A member over the rate (core.services.chat) gets one ⏳ reaction on the first message
dropped in a window, and later drops in that window are only logged at debug: a reaction
tells the moderator why the game did not see it (a message cannot be ephemeral), and one per
window keeps a spammer from turning every dropped message into a Discord API call.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import discord

from bot.checks import AuditThrottle, serves
from bot.services_access import HasServices
from core.permissions import Level
from core.services.audit import Actor
from core.services.channels import ChannelKind
from core.services.chat import ChatOutcome, ChatService


class LanguardBot(HasServices, Protocol):
    """What this module needs of bot.client.LanguardBot (which imports this module, so
    naming that class here would tie the two in a circle)."""

    def add_listener(self, func: Any, /, name: str = ...) -> None: ...

    def remove_listener(self, func: Any, /, name: str = ...) -> None: ...


__all__ = ["INTENT_HELP", "RATE_REACTION", "ChatIn"]

_log = logging.getLogger(__name__)

RATE_REACTION = "⏳"
FAILED_REACTION = "⚠️"
INTENT_HELP = (
    "languard: Discord refused the Message Content intent that LANGUARD_CHAT_FROM_DISCORD=true "
    "needs. Enable it in the developer portal (your app -> Bot -> Privileged Gateway Intents "
    '-> "Message Content Intent" -> Save), or set LANGUARD_CHAT_FROM_DISCORD=false.'
)
_CHAT_TYPES = (discord.MessageType.default, discord.MessageType.reply)


class ChatIn:
    """Listens to `on_message`; the chat bindings are cached and refreshed on every change."""

    def __init__(self, bot: LanguardBot, service: ChatService | None = None) -> None:
        self.bot = bot
        runtime = bot.services
        self.service = service or ChatService(runtime.supervisor, runtime.audit)
        self._servers_of: dict[int, list[int]] = {}
        """chat channel id → the servers whose chat it carries."""
        self.handled = 0
        """Messages seen in chat channels, relayed or not (tests wait on it, not on time)."""
        self._reacted = AuditThrottle(window=self.service.rate_per)
        """One ⏳ per member per rate window."""

    async def start(self) -> None:
        channels = self.bot.services.channels
        channels.listeners.append(self.refresh)
        await self.refresh()
        self.bot.add_listener(self.on_message, "on_message")

    def close(self) -> None:
        self.bot.remove_listener(self.on_message, "on_message")
        listeners = self.bot.services.channels.listeners if self.bot.runtime else []
        if self.refresh in listeners:
            listeners.remove(self.refresh)

    async def refresh(self) -> None:
        servers_of: dict[int, list[int]] = {}
        for binding in await self.bot.services.channels.list():
            if binding.kind is ChannelKind.CHAT:
                servers_of.setdefault(binding.channel_id, []).append(binding.server_id)
        self._servers_of = servers_of

    async def on_message(self, message: discord.Message) -> None:
        if message.channel.id not in self._servers_of:
            return
        try:
            await self._handle(message)
        except Exception:  # one bad message must not stop the listener
            _log.exception("chat from Discord: message %d not handled", message.id)
        finally:
            self.handled += 1

    async def _handle(self, message: discord.Message) -> None:
        author = message.author
        if author.bot or message.webhook_id is not None or message.type not in _CHAT_TYPES:
            return  # the bot's own relay of game chat among them: no echo loop
        server_ids = self._servers_of.get(message.channel.id)
        guild = message.guild
        if not server_ids or guild is None or not serves(self.bot, guild.id):
            return
        if not isinstance(author, discord.Member):
            return
        text = message.clean_content
        actor = Actor(author.id, str(author))
        for server_id in server_ids:
            if await self._level(guild, author, server_id) < Level.MODERATOR:
                _log.debug("chat from %s ignored: below moderator for %d", author, server_id)
                continue
            outcome = await self.service.from_discord(actor, server_id, author.display_name, text)
            await self._react(message, outcome)

    async def _level(self, guild: discord.Guild, member: discord.Member, server_id: int) -> Level:
        """bot.checks.member_level for a message author (the same rule, no Interaction)."""
        return await self.bot.services.permissions.level_for(
            guild.id,
            [role.id for role in member.roles],
            server_id=server_id,
            is_owner=guild.owner_id == member.id,
            is_administrator=member.guild_permissions.administrator,
        )

    async def _react(self, message: discord.Message, outcome: ChatOutcome) -> None:
        if outcome is ChatOutcome.RATE_LIMITED:
            if not self._reacted.allow(("rate", message.author.id)):
                return
            emoji = RATE_REACTION
        elif outcome in (ChatOutcome.FAILED, ChatOutcome.NOT_RUNNING):
            emoji = FAILED_REACTION
        else:
            return
        try:
            await message.add_reaction(emoji)
        except discord.HTTPException as exc:  # no Add Reactions there: the log says so
            _log.info("cannot react to a chat message in %d: %s", message.channel.id, exc)
