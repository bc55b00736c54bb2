"""The Discord client: set-up in `setup_hook`, clean shutdown that leaves game servers running."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord
from discord.ext import commands

from bot.audit_feed import AuditFeed
from bot.channels import ChannelHub, HubConfig
from bot.chat_in import ChatIn
from bot.checks import AuditThrottle, MemberRates, RateRule
from bot.i18n import LanguardTranslator
from bot.invite import invite_url
from bot.tree import LanguardTree, tree_fingerprint
from core.config import Settings
from core.events import EventBus
from core.games.base import GameProfile
from core.runtime import Runtime
from core.services.bot_state import BotStateService

__all__ = ["COGS", "LanguardBot"]

_log = logging.getLogger(__name__)

COGS = (
    "cogs.servers",
    "cogs.players",
    "cogs.bans",
    "cogs.missions",
    "cogs.logs",
    "cogs.schedule",
    "cogs.backup",
    "cogs.mods",
    "cogs.perms",
    "cogs.audit",
    "cogs.host",
    "cogs.status",
    "cogs.help",
)
"""Loaded as extensions by name, so nothing in bot/ imports a cog."""


class LanguardBot(commands.Bot):
    def __init__(
        self,
        settings: Settings,
        *,
        cogs: tuple[str, ...] = COGS,
        profiles: Sequence[GameProfile] | None = None,
        hub_config: HubConfig | None = None,
        rate_overrides: Sequence[RateRule] = (),
        **options: Any,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        if settings.chat_from_discord:  # bot.chat_in; privileged: the portal must allow it
            intents.guild_messages = True
            intents.message_content = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=LanguardTree,
            **options,
        )
        self.settings = settings
        self.cog_names = cogs
        self.profiles = profiles
        """None: the games the operator configured (core.runtime.default_profiles)."""
        self.runtime: Runtime | None = None
        self.channel_hub = ChannelHub(self, config=hub_config)
        self.audit_feed = AuditFeed(self)
        self.chat_in: ChatIn | None = None
        """Discord → game chat, when LANGUARD_CHAT_FROM_DISCORD is on."""
        self.errors_recorded = 0
        self.synced = False
        """True when this start pushed the command tree to Discord (it had changed)."""
        self.audit_throttle = AuditThrottle()
        """Refusals that could be repeated at will (foreign guild, rate) are audited once a
        minute per user and cause, so nobody can flood the audit log."""
        self.member_rates = MemberRates(rate_overrides)
        """Per-member rates of costly commands (bot.checks.limit); tests may relax them."""

    @property
    def services(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError("the bot is not set up yet")
        return self.runtime

    async def setup_hook(self) -> None:
        bus = EventBus()
        self.channel_hub.listen(bus)  # before the supervisor publishes anything
        self.audit_feed.listen(bus)
        self.runtime = await Runtime.open(self.settings, self.profiles, bus=bus)
        await self.tree.set_translator(LanguardTranslator())
        for name in self.cog_names:
            await self.load_extension(name)
        await self.sync_commands()
        from bot.status_buttons import LifecycleButton  # answers status buttons, old ones too

        self.add_dynamic_items(LifecycleButton)
        await self.channel_hub.start()
        await self.audit_feed.start()
        if self.settings.chat_from_discord:
            self.chat_in = ChatIn(self)
            await self.chat_in.start()
        from bot.http_endpoint import start_http_endpoint  # off unless LANGUARD_HTTP_ADDR

        self.http_endpoint = await start_http_endpoint(self)

    async def tree_payload(self, guild: discord.abc.Snowflake) -> list[dict[str, Any]]:
        """The commands as `tree.sync` sends them, translations included, so a changed
        locale file changes the fingerprint and is synced."""
        translator = self.tree.translator
        commands = self.tree.get_commands(guild=guild)
        if translator is None:
            return [c.to_dict(self.tree) for c in commands]
        return [await c.get_translated_payload(self.tree, translator) for c in commands]

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Push the command tree to each configured guild whose copy differs from the last one
        pushed there (`force`: push anyway). Never globally: commands registered globally
        would show in every guild the bot is in, and a fingerprint of an older global sync
        clears them. A guild the bot is not in (403 Missing Access) is one log line."""
        state = self.services.bot_state
        await self._clear_global_commands(state, force=force)
        if not self.settings.guild_ids:
            _log.warning(
                "LANGUARD_GUILD_ID is empty: no commands are synced and no guild is served"
            )
        changed = False
        for guild_id in self.settings.guild_ids:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            payload = await self.tree_payload(guild)
            fingerprint = tree_fingerprint(payload)
            app = self.application_id
            if not force and await state.tree_fingerprint(app, guild_id) == fingerprint:
                _log.info("command tree unchanged; not syncing (guild:%d)", guild_id)
                continue
            try:
                await self.tree.sync(guild=guild)
            except discord.Forbidden as exc:
                _log.error(
                    "cannot sync commands to guild %d (%s): is the bot in it? Invite it: %s",
                    guild_id,
                    exc.text or exc.status,
                    invite_url(self.application_id or 0),
                )
                continue
            await state.remember_tree(app, guild_id, fingerprint)
            changed = self.synced = True
            _log.info("synced %d commands (guild:%d)", len(payload), guild_id)
        return changed

    async def _clear_global_commands(self, state: BotStateService, *, force: bool) -> None:
        """An older Languard (or an empty LANGUARD_GUILD_ID then) synced globally: remove those
        commands once, so they stop showing in other guilds."""
        empty = tree_fingerprint([])
        previous = await state.tree_fingerprint(self.application_id, None)
        if previous == empty or (previous is None and not force):
            return
        assert self.application_id is not None
        await self.http.bulk_upsert_global_commands(self.application_id, payload=[])
        await state.remember_tree(self.application_id, None, empty)
        _log.info("removed the globally registered commands of an earlier sync")

    def record_error(self) -> None:
        """Count an unexpected error (shown by /host)."""
        self.errors_recorded += 1
        if self.runtime is not None:
            self.runtime.host.record_error()

    async def on_ready(self) -> None:
        _log.info("connected as %s to %d guild(s)", self.user, len(self.guilds))
        configured = self.settings.guild_ids
        present = {guild.id for guild in self.guilds}
        if not configured:
            for guild in self.guilds:
                _log.warning(
                    "not serving guild %r (id %d): set LANGUARD_GUILD_ID=%d to serve it",
                    guild.name,
                    guild.id,
                    guild.id,
                )
        for guild_id in configured:
            if guild_id not in present:
                _log.warning(
                    "configured guild %d does not have the bot; invite it: %s",
                    guild_id,
                    invite_url(self.application_id or 0),
                )

    async def close(self) -> None:
        endpoint = getattr(self, "http_endpoint", None)  # set by setup_hook
        if endpoint is not None:
            await endpoint.close()
        if self.chat_in is not None:
            self.chat_in.close()
        self.audit_feed.stop()  # no await before the hub closes: its timing stays as it was
        # the hub first, while discord.py's HTTP session can still finish what is in flight
        await self.channel_hub.close()
        await self.audit_feed.close()
        try:
            await super().close()
        finally:
            if self.runtime is not None:
                await self.runtime.close()
                self.runtime = None
