"""Confirmation buttons: only the invoking user may press them, and they expire."""

from __future__ import annotations

from typing import Any

import discord

from bot.checks import guard_guild

__all__ = ["Confirm", "confirm"]


class Confirm(discord.ui.View):
    """`view.value` is True (confirmed), False (cancelled) or None (timed out)."""

    def __init__(self, owner_id: int, *, confirm_label: str = "Confirm", timeout: float = 60.0):
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.value: bool | None = None
        self.confirm_button.label = confirm_label

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        # components go to the View, never through the tree: the guild lock is checked here too
        if not await guard_guild(interaction):
            return False
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the person who ran the command can answer this.", ephemeral=True
            )
            return False
        return True

    def _disable(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.danger)
    async def confirm_button(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Confirm]
    ) -> None:
        self.value = True
        self._disable()
        await interaction.response.edit_message(view=self)
        self.stop()

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel_button(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Confirm]
    ) -> None:
        self.value = False
        self._disable()
        await interaction.response.edit_message(content="Cancelled.", view=self)
        self.stop()


async def confirm(interaction: discord.Interaction[Any], question: str, label: str) -> bool:
    """Ask the invoker (only them) with buttons; False when cancelled or expired.

    The question is the interaction's first (ephemeral) response; afterwards the caller
    edits it with `edit_original_response` to show what happened.
    """
    view = Confirm(interaction.user.id, confirm_label=label)
    await interaction.response.send_message(question, view=view, ephemeral=True)
    await view.wait()
    if view.value is None:
        await interaction.edit_original_response(content="Expired: nothing was done.", view=None)
    return bool(view.value)
