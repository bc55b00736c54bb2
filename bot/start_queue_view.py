"""A start that waits for room on its host: the reply shows its place, edited as it moves,
with a Cancel button, then the usual steps and result once the start runs.

Why one place for every edit of that reply: the place moves while the server's states
are followed, so the edits must go out in order (a late "place 2" never lands over the
result), at most one place edit per second (only the latest place matters), and the wait
may outlive the interaction's 15-minute token. Past ~14 minutes (or as soon as Discord
refuses the token) a public reply is edited through the channel instead, as the bot's
own message: the same message keeps its place, its button and then the result, and no
second message is posted. An ephemeral reply (a status button) exists only behind the
token: after 15 minutes it can show nothing more, and the start still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable
from typing import Any

import discord

from bot.checks import actor_of
from bot.embeds import Lang, result_embed
from bot.i18n import error_text, tr
from bot.progress import action_title, follow_states
from bot.services_access import services_of
from bot.views import InvokerView
from core.errors import LanguardError, NotFound
from core.events import EventBus
from core.hosts.queue import StartCancelled
from core.services.server_views import ActionResult, ServerRef

__all__ = ["EDIT_GAP", "TOKEN_SAFE_AGE", "CancelStart", "StartReply", "run_start"]

_log = logging.getLogger(__name__)

EDIT_GAP = 1.0
"""Seconds between two place edits: a busy queue must not spend the reply's rate limit."""
TOKEN_SAFE_AGE = 14 * 60.0
"""An interaction token works for 15 minutes; past this age the channel route is used."""
_TOKEN_GONE = frozenset({10015, 50027})
"""Unknown Webhook (404) and Invalid Webhook Token (401): the token has expired."""


def waiting_text(locale: Lang, server: str, host: str, place: int) -> str:
    return tr(
        locale,
        "⏳ {server} waits for room on host {host}: place {place} in the queue",
        server=server,
        host=host,
        place=place,
    )


def cancelled_text(locale: Lang, server: str) -> str:
    return "⏹️ " + tr(locale, "The start of **{server}** was cancelled.", server=server)


class CancelStart(InvokerView):
    """The Cancel button of a waiting start; only whoever asked for the start may press it."""

    def __init__(self, owner_id: int, server: str, locale: Lang) -> None:
        super().__init__(owner_id, timeout=None)  # the wait has no deadline; stopped at its end
        self.server = server
        self.locale = locale
        self.cancel_button.label = tr(locale, "Cancel")

    @discord.ui.button(style=discord.ButtonStyle.danger)
    async def cancel_button(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[CancelStart]
    ) -> None:
        try:
            cancelled = services_of(interaction.client).servers.cancel_start(self.server)
        except NotFound:  # deleted meanwhile: its ticket went with it
            cancelled = False
        if not cancelled:
            text = tr(
                interaction.locale,
                "**{server}** no longer waits in the queue: its start is under way.",
                server=self.server,
            )
            await interaction.response.send_message(text, ephemeral=True)
            return
        # this press's own token edits the message now; the start's reply says the same after
        text = cancelled_text(self.locale, self.server)
        await interaction.response.edit_message(content=text, embed=None, view=None)
        self.stop()


class StartReply:
    """Every edit of one start's reply, in order: the place (paced), steps, the result."""

    def __init__(self, interaction: discord.Interaction[Any], server: ServerRef) -> None:
        self.interaction = interaction
        self.server = server
        self.locale = interaction.locale
        self.view: CancelStart | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._pacer: asyncio.Task[None] | None = None
        self._place = 0
        self._shown = 0
        self._last_edit = -math.inf
        self._closed = False
        self._editing = False
        self._token_dead = False
        self._message: tuple[int, int] | None = None
        """(channel id, message id) of a public reply: the route once the token is gone."""

    # -- the place in the queue ----------------------------------------------------------

    async def on_place(self, place: int) -> None:
        """The core's PlaceHook: note the place; the pacer shows the latest one."""
        if self._closed:
            return
        self._place = place
        if self._pacer is None:
            self._pacer = asyncio.create_task(self._pace())
        self._wake.set()

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            delay = self._last_edit + EDIT_GAP - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing, not synchronisation: coalesces places
            async with self._lock:
                if self._closed or self._place == self._shown:
                    continue
                place = self._place
                self._editing = True
                try:
                    if await self._show_place(place):
                        self._shown = place
                except Exception:  # showing the place is a courtesy: the wait goes on
                    _log.exception("showing the place of %s failed", self.server.name)
                finally:
                    self._editing = False

    async def _show_place(self, place: int) -> bool:
        servers = services_of(self.interaction.client).servers
        try:
            host = servers.waiting_host(self.server.name)
        except LanguardError:  # deleted meanwhile
            host = None
        if host is None:  # admitted or cancelled meanwhile: what follows says so
            return False
        if self.view is None:
            self.view = CancelStart(self.interaction.user.id, self.server.name, self.locale)
        text = waiting_text(self.locale, self.server.name, host, place)
        return await self._edit(content=text, embed=None, view=self.view)

    async def stop_waiting(self) -> None:
        """The wait is over (admitted, cancelled, refused): no place edit goes out after."""
        self._closed = True
        self._wake.set()
        pacer, self._pacer = self._pacer, None
        if pacer is None:
            return
        if not self._editing:  # an edit under way finishes, so none lands out of order
            pacer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pacer

    def close(self) -> None:
        if self.view is not None:
            self.view.stop()

    # -- edits, through the token or the channel -----------------------------------------

    async def edit(self, **fields: Any) -> bool:
        """Edit the reply (after any place edit under way); False when it could not be."""
        async with self._lock:
            return await self._edit(**fields)

    def _token_young(self) -> bool:
        age = (discord.utils.utcnow() - self.interaction.created_at).total_seconds()
        return not self._token_dead and age < TOKEN_SAFE_AGE

    async def _edit(self, **fields: Any) -> bool:
        loop = asyncio.get_running_loop()
        # an old token is still tried when there is no other route (never edited before)
        if self._token_young() or (self._message is None and not self._token_dead):
            try:
                message = await self.interaction.edit_original_response(**fields)
            except discord.HTTPException as exc:
                if exc.code not in _TOKEN_GONE:
                    _log.debug("editing the start reply of %s failed: %s", self.server.name, exc)
                    return False
                self._token_dead = True
            else:
                self._last_edit = loop.time()
                if not message.flags.ephemeral:
                    self._message = (message.channel.id, message.id)
                return True
        if self._message is None:  # ephemeral (or never shown): only the token could edit it
            _log.info("the start reply of %s can no longer be edited", self.server.name)
            return False
        channel_id, message_id = self._message
        channel = self.interaction.client.get_partial_messageable(channel_id)
        try:
            await channel.get_partial_message(message_id).edit(**fields)
        except discord.HTTPException as exc:  # no access to the channel: nothing else to do
            _log.warning("could not edit the start reply of %s: %s", self.server.name, exc)
            return False
        self._last_edit = loop.time()
        return True

    @property
    def token_dead(self) -> bool:
        return not self._token_young()

    # -- the start's steps ----------------------------------------------------------------

    async def follow(self, bus: EventBus, work: Awaitable[ActionResult]) -> ActionResult:
        """Run the start, showing each state it passes through (as bot.progress does)."""
        title = action_title(self.locale, "start", self.server.name)

        async def show(text: str) -> None:
            await self.stop_waiting()  # admitted: the place and its button are done
            await self.edit(content=text, view=None)

        try:
            return await follow_states(
                self.interaction, bus, self.server.id, work, title=title, show=show
            )
        finally:
            await self.stop_waiting()


async def run_start(
    interaction: discord.Interaction[Any], server: ServerRef, *, clear_steps: bool = False
) -> None:
    """`/server start` and the status Start button: start, waiting for room if need be.

    A refusal while the token still works goes to the caller's error policy as before; after
    a wait that outlived it, the refusal is edited into the public reply instead."""
    if not interaction.response.is_done():
        await interaction.response.defer()
    services = services_of(interaction.client)
    locale = interaction.locale
    reply = StartReply(interaction, server)
    try:
        work = services.servers.start(actor_of(interaction), server.name, on_place=reply.on_place)
        result = await reply.follow(services.bus, work)
    except StartCancelled:
        await reply.edit(content=cancelled_text(locale, server.name), embed=None, view=None)
        return
    except LanguardError as exc:
        if not reply.token_dead:
            raise
        text = f"⚠️ {error_text(locale, exc)}"[:1000]
        await reply.edit(content=text, embed=None, view=None)
        return
    finally:
        reply.close()
    embed = result_embed(result, locale)
    if clear_steps:
        await reply.edit(content=None, embed=embed, view=None)
    else:
        await reply.edit(embed=embed, view=None)
