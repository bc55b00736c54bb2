"""Menus (Discord selects): `/missions rotation` picked from the server's stored missions.

A select answers with the chosen values in the order of its options, not in click order, so
the options are listed in the order they will play: the current rotation first, then the
other missions by name. Any other order (or a mission twice) goes through the command's
`missions` text option. The select is checked like the command: guild lock, the invoker
only, the operator level re-checked when it is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import discord

from bot.checks import actor_of, guard_guild
from bot.embeds import Lang, clean_game_text, format_bytes, ok_embed
from bot.i18n import tr
from bot.modals import AppCommand, recheck_level, report_error
from core.errors import InvalidInput
from core.permissions import Level
from core.services.mission_types import MissionInfo, RotationEntry, RotationResult

__all__ = ["MAX_OPTIONS", "RotationPicker", "open_rotation_picker", "rotation_embed"]

MAX_OPTIONS = 25
"""Discord's cap on a select's options."""
PICK_TIMEOUT = 180.0
ROTATION_COMMAND = "missions rotation"

# -- what users read --------------------------------------------------------------------------


def prompt_text(locale: Lang, server: str) -> str:
    return tr(
        locale,
        "Pick the missions of **{server}**'s rotation. They play in the order listed (the "
        "current rotation first). For another order or a mission twice, use the `missions` "
        "option: `a, b, c`.",
        server=clean_game_text(server, 64),
    )


def no_missions_error(server: str) -> InvalidInput:
    return InvalidInput(
        "{server} has no missions yet: add one with `/missions upload`",
        server=clean_game_text(server, 64),
    )


def too_many_error(server: str, count: int) -> InvalidInput:
    return InvalidInput(
        "{server} has {count} missions, more than a menu can list ({most}): give the "
        "rotation in the `missions` option, in order, separated by commas",
        server=clean_game_text(server, 64),
        count=count,
        most=MAX_OPTIONS,
    )


def stale_choice_error() -> InvalidInput:
    return InvalidInput("that choice is no longer offered; run `/missions rotation` again")


def rotation_note(locale: Lang, result: RotationResult) -> str:
    """What the new rotation means for the server (the service's note, translated)."""
    if result.entries:
        return tr(
            locale, "takes effect at the next start, or load a mission now with /missions load"
        )
    return tr(locale, "the rotation is now empty; at the next start the server waits for an admin")


def rotation_embed(result: RotationResult, locale: Lang = None) -> discord.Embed:
    """The answer to a changed rotation, for the text option and the menu alike."""
    order = "\n".join(
        f"{i}. {clean_game_text(e.template, 80)}" + (f" ({e.difficulty})" if e.difficulty else "")
        for i, e in enumerate(result.entries, 1)
    )
    return ok_embed(
        tr(locale, "Rotation set"),
        f"{order or tr(locale, '(empty)')}\n{rotation_note(locale, result)}",
    )


def _play_order(
    missions: Sequence[MissionInfo], current: Sequence[RotationEntry]
) -> list[MissionInfo]:
    by_template = {m.template.casefold(): m for m in missions}
    first = [
        by_template[e.template.casefold()] for e in current if e.template.casefold() in by_template
    ]
    first = list(dict.fromkeys(first))
    return first + [m for m in missions if m not in first]


class RotationPicker(discord.ui.View):
    """One multi-select over at most MAX_OPTIONS missions; choosing sets the rotation."""

    def __init__(
        self,
        *,
        owner_id: int,
        server: str,
        missions: Sequence[MissionInfo],
        current: Sequence[RotationEntry],
        difficulty: str | None,
        command: AppCommand,
        timeout: float | None = None,
        locale: Lang = None,
    ) -> None:
        super().__init__(timeout=PICK_TIMEOUT if timeout is None else timeout)
        ordered = _play_order(missions, current)[:MAX_OPTIONS]
        self.owner_id = owner_id
        self.server = server
        self.difficulty = difficulty
        self.command = command
        self.filenames = [m.filename for m in ordered]
        self.origin: discord.Interaction[Any] | None = None
        self.menu: discord.ui.Select[RotationPicker] = discord.ui.Select(
            placeholder=tr(locale, "Missions to play, in the order listed"),
            min_values=0,
            max_values=max(1, len(ordered)),
            options=[
                discord.SelectOption(
                    label=m.template[:100],
                    value=str(i),
                    description=f"{m.terrain}, {format_bytes(m.size)}"[:100],
                    default=m.in_rotation,
                )
                for i, m in enumerate(ordered)
            ],
        )
        self.menu.callback = self.picked  # type: ignore[method-assign]
        self.add_item(self.menu)

    def chosen(self, values: Sequence[str]) -> list[str]:
        """The filenames picked, in option order; a value not offered is refused."""
        indexes: set[int] = set()
        for value in values:
            if not (value.isascii() and value.isdigit()) or int(value) >= len(self.filenames):
                raise stale_choice_error()
            indexes.add(int(value))
        return [self.filenames[i] for i in sorted(indexes)]

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if not await guard_guild(interaction):
            return False
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                tr(interaction.locale, "Only the person who ran the command can use this menu."),
                ephemeral=True,
            )
            return False
        return True

    async def picked(self, interaction: discord.Interaction[Any]) -> None:
        await recheck_level(interaction, Level.OPERATOR, self.server, ROTATION_COMMAND)
        names = self.chosen(self.menu.values)
        result = await interaction.client.services.missions.set_rotation(
            actor_of(interaction), self.server, names, self.difficulty
        )
        self.stop()
        locale = interaction.locale
        await interaction.response.edit_message(content=tr(locale, "✅ Rotation saved."), view=None)
        await interaction.followup.send(embed=rotation_embed(result, locale))

    async def on_error(
        self,
        interaction: discord.Interaction[Any],
        error: Exception,
        item: discord.ui.Item[RotationPicker],
        /,
    ) -> None:
        await report_error(interaction, self.command, error)

    async def on_timeout(self) -> None:
        if self.origin is None:
            return
        with contextlib.suppress(discord.HTTPException):  # message gone or token expired
            await self.origin.edit_original_response(
                content=tr(self.origin.locale, "Expired: the rotation was not changed."), view=None
            )


async def open_rotation_picker(
    interaction: discord.Interaction[Any], server: str, difficulty: str | None
) -> None:
    """`/missions rotation` without `missions`: offer the menu, or say why it cannot be
    offered (InvalidInput, shown by the tree)."""
    service = interaction.client.services.missions
    missions = await service.list(server)
    if not missions:
        raise no_missions_error(server)
    if len(missions) > MAX_OPTIONS:
        raise too_many_error(server, len(missions))
    command = interaction.command
    assert command is not None  # only ever called from the slash command
    view = RotationPicker(
        owner_id=interaction.user.id,
        server=server,
        missions=missions,
        current=await service.rotation(server),
        difficulty=difficulty,
        command=command,
        locale=interaction.locale,
    )
    await interaction.response.send_message(
        prompt_text(interaction.locale, server), view=view, ephemeral=True
    )
    view.origin = interaction
