"""Confirmation buttons: only the invoking user may press them, and they expire."""

from __future__ import annotations

from typing import Any

import discord

from bot.checks import guard_guild
from bot.i18n import tr

__all__ = ["Confirm", "InvokerView", "confirm"]


class InvokerView(discord.ui.View):
    """A view only the member who ran the command may press (and only in a served guild:
    components reach the view, never the tree's checks)."""

    def __init__(self, owner_id: int, *, timeout: float | None) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if not await guard_guild(interaction):
            return False
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                tr(interaction.locale, "Only the person who ran the command can answer this."),
                ephemeral=True,
            )
            return False
        return True


class Confirm(InvokerView):
    """`view.value` is True (confirmed), False (cancelled) or None (timed out).

    `locale` is the invoker's: only they can answer, so the buttons and what follows stay in
    their language; `confirm_label` comes translated (the default is "Confirm")."""

    def __init__(
        self,
        owner_id: int,
        *,
        confirm_label: str | None = None,
        timeout: float = 60.0,
        locale: str | discord.Locale | None = None,
    ):
        super().__init__(owner_id, timeout=timeout)
        self.locale = locale
        self.value: bool | None = None
        self.confirm_button.label = confirm_label or tr(locale, "Confirm")
        self.cancel_button.label = tr(locale, "Cancel")

    def _disable(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True

    # labels are set per view, in the invoker's language (see __init__)
    @discord.ui.button(style=discord.ButtonStyle.danger)
    async def confirm_button(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Confirm]
    ) -> None:
        self.value = True
        self._disable()
        await interaction.response.edit_message(view=self)
        self.stop()

    @discord.ui.button(style=discord.ButtonStyle.secondary)
    async def cancel_button(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Confirm]
    ) -> None:
        self.value = False
        self._disable()
        await interaction.response.edit_message(content=tr(self.locale, "Cancelled."), view=self)
        self.stop()


async def confirm(interaction: discord.Interaction[Any], question: str, label: str) -> bool:
    """Ask the invoker (only them) with buttons; False when cancelled or expired.

    `question` and `label` come translated (`tr(interaction.locale, ...)`). The question is
    the interaction's first (ephemeral) response; afterwards the caller edits it with
    `edit_original_response` to show what happened.
    """
    locale = interaction.locale
    view = Confirm(interaction.user.id, confirm_label=label, locale=locale)
    await interaction.response.send_message(question, view=view, ephemeral=True)
    await view.wait()
    if view.value is None:
        await interaction.edit_original_response(
            content=tr(locale, "Expired: nothing was done."), view=None
        )
    return bool(view.value)
