"""Start / Stop / Restart buttons on a server's status embed, alive across bot restarts.

A `DynamicItem` keeps the server id and the action in its custom id (`lg:srv:<id>:<action>`),
so no view has to be registered per message: after a restart the bot still answers the
buttons on messages it posted before. The custom id comes from the client, so it is never
trusted: the guild, the server, the member's level *for the server named in the id*, and the
per-member lifecycle rate are all checked again on every press, exactly as for
`/server start|stop|restart`, and the work goes through the same service methods (and so the
same audit rows). Refusals are answered here, ephemerally: discord.py answers nothing when
`interaction_check` returns False.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import time
from typing import Any

import discord

from bot.checks import LIFECYCLE_RATE, actor_of, guard_guild, member_level
from bot.embeds import Lang, result_embed
from bot.i18n import error_text, tr
from bot.progress import action_title, follow_states, players_question
from bot.start_queue_view import run_start
from bot.views import confirm
from core.errors import LanguardError, NotFound
from core.permissions import Level
from core.supervisor.states import ServerState

__all__ = ["ACTIONS", "LifecycleButton", "custom_id", "lifecycle_view"]

_log = logging.getLogger(__name__)

ACTIONS = ("start", "stop", "restart")
NEEDED = Level.OPERATOR
"""The level of `/server start|stop|restart`."""
TEMPLATE = r"lg:srv:(?P<server>[0-9]{1,19}):(?P<action>start|stop|restart)"

STYLES = {
    "start": discord.ButtonStyle.success,
    "stop": discord.ButtonStyle.danger,
    "restart": discord.ButtonStyle.primary,
}
CONFIRMED = frozenset({"stop", "restart"})
"""Actions asked again when players are online."""

# -- what users read: the same words as `/server start|stop|restart` and the tree's errors ----


def button_label(locale: Lang, action: str) -> str:
    if action == "start":
        return tr(locale, "Start")
    if action == "stop":
        return tr(locale, "Stop")
    return tr(locale, "Restart")


def level_text(locale: Lang, has: Level) -> str:
    return tr(
        locale,
        "You need the **{needed}** level for this (you have {has}). "
        "An admin can grant it to one of your roles with `/perms grant`.",
        needed=tr(locale, NEEDED.label),
        has=tr(locale, has.label if has else "none"),
    )


def rate_text(locale: Lang, retry_after: float) -> str:
    wait = max(1, math.ceil(retry_after))
    return tr(
        locale,
        "Slow down: try again <t:{when}:R> (in {wait} s).",
        when=math.ceil(time.time()) + wait,
        wait=wait,
    )


def failed_text(locale: Lang, reference: str) -> str:
    return tr(
        locale,
        "Something went wrong on our side (reference `{reference}`). "
        "It was logged; give the reference to whoever runs the bot.",
        reference=reference,
    )


# -- which buttons make sense ------------------------------------------------------------------

_ENABLED = {
    "start": {ServerState.STOPPED, ServerState.CRASHED, ServerState.FAILED},
    "stop": {ServerState.STARTING, ServerState.RUNNING, ServerState.CRASHED},
    "restart": {ServerState.RUNNING, ServerState.CRASHED},
}


def custom_id(server_id: int, action: str) -> str:
    return f"lg:srv:{server_id}:{action}"


class LifecycleButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """One button of one server; everything it needs is in its custom id."""

    def __init__(
        self, server_id: int, action: str, *, disabled: bool = False, locale: Lang = None
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        super().__init__(
            discord.ui.Button(
                label=button_label(locale, action),
                style=STYLES[action],
                custom_id=custom_id(server_id, action),
                disabled=disabled,
            )
        )
        self.server_id = server_id
        self.action = action

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> LifecycleButton:
        return cls(int(match["server"]), match["action"])

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Guild, server, level for that server, rate: each refusal answered and audited.
        discord.py swallows an exception raised here, so nothing may escape."""
        try:
            return await self._check(interaction)
        except Exception:
            await _failed(interaction, "check")
            return False

    async def _check(self, interaction: discord.Interaction[Any]) -> bool:
        if not await guard_guild(interaction):
            return False
        bot = interaction.client
        locale = interaction.locale
        try:
            bot.services.servers.ref_by_id(self.server_id)
        except NotFound:
            await _say(interaction, tr(locale, "This server no longer exists."))
            return False
        user_id = interaction.user.id
        command = f"server {self.action}"
        has = await member_level(interaction, self.server_id)
        if has < NEEDED:
            # one row a minute per member, command and server, like a refused slash command
            if bot.audit_throttle.allow(("level", user_id, command, self.server_id)):
                await bot.services.audit.record(
                    actor_of(interaction),
                    f"denied:{command}",
                    server_id=self.server_id,
                    arguments={"needed": NEEDED.label, "has": has.label, "via": "button"},
                    result="refused: level too low",
                    ok=False,
                )
            await _say(interaction, level_text(locale, has))
            return False
        bucket = bot.member_rates.hit(LIFECYCLE_RATE, user_id)
        if bucket is not None:
            if bot.audit_throttle.allow(("rate", user_id, LIFECYCLE_RATE.name)):
                await bot.services.audit.record(
                    actor_of(interaction),
                    f"denied:{command}",
                    server_id=self.server_id,
                    arguments={
                        "rate": f"{bucket.rate} per {bucket.per:.0f} s ({LIFECYCLE_RATE.name})",
                        "via": "button",
                    },
                    result="refused: too many calls",
                    ok=False,
                )
            await _say(interaction, rate_text(locale, bucket.get_retry_after()))
            return False
        return True

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await self._run(interaction)
        except LanguardError as exc:  # not running, already running...: the user can act on it
            await _say(interaction, error_text(interaction.locale, exc))
        except Exception:
            await _failed(interaction, self.action)

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        services = interaction.client.services
        locale = interaction.locale
        name = services.servers.ref_by_id(self.server_id).name
        if self.action in CONFIRMED:
            # the live list the bot keeps, as /server stop does (asking the game may hang)
            online = len(services.players.known_online(name))
            question = players_question(locale, self.action, name, online)
            label = button_label(locale, self.action)
            if online and not await confirm(interaction, question, label):
                return
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=True, thinking=True)
        if self.action == "start":  # may wait for room on its host: the place is shown
            ref = services.servers.ref_by_id(self.server_id)
            await run_start(interaction, ref, clear_steps=True)
            return
        actor = actor_of(interaction)
        work = {
            "stop": services.servers.stop,
            "restart": services.servers.restart,
        }[self.action](actor, name)
        title = action_title(locale, self.action, name)
        result = await follow_states(interaction, services.bus, self.server_id, work, title=title)
        embed = result_embed(result, locale)
        await interaction.edit_original_response(content=None, embed=embed, view=None)


def lifecycle_view(server_id: int, state: ServerState, locale: Lang = None) -> discord.ui.View:
    """The buttons of a status message, labelled in the channel's language; an action that
    makes no sense now is disabled."""
    view = discord.ui.View(timeout=None)
    for action in ACTIONS:
        disabled = state not in _ENABLED[action]
        view.add_item(LifecycleButton(server_id, action, disabled=disabled, locale=locale))
    return view


async def _say(interaction: discord.Interaction[Any], text: str) -> None:
    """An ephemeral answer, as the first response or as a follow-up / edit after one."""
    embed = discord.Embed(description=f"⚠️ {text}", colour=discord.Colour.red())
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(embed=embed, ephemeral=True)
        else:
            await interaction.edit_original_response(content=None, embed=embed, view=None)
    except discord.HTTPException as exc:  # expired: nothing more to say
        _log.warning("could not answer a status button: %s", exc)


async def _failed(interaction: discord.Interaction[Any], where: str) -> None:
    reference = secrets.token_hex(4)
    _log.exception("status button %s failed (reference %s)", where, reference)
    record = getattr(interaction.client, "record_error", None)
    if callable(record):
        record()
    await _say(interaction, failed_text(interaction.locale, reference))
