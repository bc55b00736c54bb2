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
from bot.embeds import STATE_COLOURS, clean_game_text
from bot.progress import follow_states
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

# -- what users read (one place, for a later translation) -------------------------------------
LABELS = {"start": "Start", "stop": "Stop", "restart": "Restart"}
STYLES = {
    "start": discord.ButtonStyle.success,
    "stop": discord.ButtonStyle.danger,
    "restart": discord.ButtonStyle.primary,
}
TITLES = {"start": "Starting {name}", "stop": "Stopping {name}", "restart": "Restarting {name}"}
CONFIRM_LABELS = {"stop": "Stop", "restart": "Restart"}
GONE_TEXT = "This server no longer exists."
FAILED_TEXT = (
    "Something went wrong on our side (reference `{reference}`). "
    "It was logged; give the reference to whoever runs the bot."
)


def level_text(has: Level) -> str:
    return (
        f"You need the **{NEEDED.label}** level for this "
        f"(you have {has.label if has else 'none'}). "
        "An admin can grant it to one of your roles with `/perms grant`."
    )


def rate_text(retry_after: float) -> str:
    wait = max(1, math.ceil(retry_after))
    return f"Slow down: try again <t:{math.ceil(time.time()) + wait}:R> (in {wait} s)."


def confirm_text(action: str, name: str, online: int) -> str:
    verb = "Stop" if action == "stop" else "Restart"
    return f"**{name}** has {online} player(s) online. {verb} it anyway?"


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

    def __init__(self, server_id: int, action: str, *, disabled: bool = False) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        super().__init__(
            discord.ui.Button(
                label=LABELS[action],
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
        try:
            bot.services.supervisor.get(self.server_id)
        except NotFound:
            await _say(interaction, GONE_TEXT)
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
            await _say(interaction, level_text(has))
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
            await _say(interaction, rate_text(bucket.get_retry_after()))
            return False
        return True

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await self._run(interaction)
        except LanguardError as exc:  # not running, already running...: the user can act on it
            await _say(interaction, str(exc))
        except Exception:
            await _failed(interaction, self.action)

    async def _run(self, interaction: discord.Interaction[Any]) -> None:
        services = interaction.client.services
        managed = services.supervisor.get(self.server_id)
        name = managed.name
        if self.action in CONFIRM_LABELS:
            # the live list the bot keeps, as /server stop does (asking the game may hang)
            online = len(services.players.known_online(name))
            question = confirm_text(self.action, name, online)
            if online and not await confirm(interaction, question, CONFIRM_LABELS[self.action]):
                return
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=True, thinking=True)
        actor = actor_of(interaction)
        work = {
            "start": services.servers.start,
            "stop": services.servers.stop,
            "restart": services.servers.restart,
        }[self.action](actor, name)
        title = TITLES[self.action].format(name=name)
        result = await follow_states(interaction, services.bus, self.server_id, work, title=title)
        icon = "✅" if result.ok else "⚠️"
        text = f"{icon} **{result.name}** is **{result.state.value}**"
        if result.reason:
            text += f" — {clean_game_text(result.reason, 300)}"
        embed = discord.Embed(description=text, colour=STATE_COLOURS.get(result.state))
        await interaction.edit_original_response(content=None, embed=embed, view=None)


def lifecycle_view(server_id: int, state: ServerState) -> discord.ui.View:
    """The buttons of a status message; an action that makes no sense now is disabled."""
    view = discord.ui.View(timeout=None)
    for action in ACTIONS:
        view.add_item(LifecycleButton(server_id, action, disabled=state not in _ENABLED[action]))
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
    await _say(interaction, FAILED_TEXT.format(reference=reference))
