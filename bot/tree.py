"""The command tree: the guild lock and autocomplete levels checked first, one error policy,
and a fingerprint so the commands are synced only when they changed."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import time
from typing import Any

import discord
from discord import app_commands

from bot import autocomplete
from bot.checks import LevelTooLow, UnknownServer, guard_guild
from bot.i18n import error_text, tr
from bot.services_access import front_end
from core.errors import LanguardError

__all__ = ["LanguardTree", "tree_fingerprint"]

_log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000
"""Errors quote input (up to 6,000 characters); an embed description holds 4,096."""


def _user_message(error: app_commands.AppCommandError, locale: discord.Locale | None) -> str | None:
    """The message for an error a user can act on, in their language, or None for a bug."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(error, LevelTooLow):
        return tr(
            locale,
            "You need the **{needed}** level for this (you have {has}). "
            "An admin can grant it to one of your roles with `/perms grant`.",
            needed=tr(locale, error.needed.label),
            has=tr(locale, error.has.label if error.has else "none"),
        )
    if isinstance(error, UnknownServer):
        return error.text(locale)
    if isinstance(original, LanguardError):
        return error_text(locale, original)
    if isinstance(error, app_commands.NoPrivateMessage):
        return tr(locale, "This command works in a server, not in direct messages.")
    if isinstance(error, app_commands.TransformerError):
        return tr(locale, "`{value}` is not a valid value here.", value=error.value)
    if isinstance(error, app_commands.CommandOnCooldown):
        wait = max(1, math.ceil(error.retry_after))
        return tr(
            locale,
            "Slow down: try again <t:{when}:R> (in {wait} s).",
            when=math.ceil(time.time()) + wait,
            wait=wait,
        )
    if isinstance(error, app_commands.CheckFailure):
        return tr(locale, "You cannot use this command here.")
    return None


class LanguardTree(app_commands.CommandTree[discord.Client]):
    async def interaction_check(self, interaction: discord.Interaction[discord.Client], /) -> bool:
        """Before any command or autocomplete: the guild must be served (bot.checks.guard_guild),
        and an autocomplete answers only members with the command's level (discord.py runs a
        command's checks when it is invoked, never for its autocomplete)."""
        if not await guard_guild(interaction):
            return False
        if interaction.type is discord.InteractionType.autocomplete:
            try:
                permitted = await autocomplete.allowed(interaction)
            except Exception:  # fail closed: no choices, and the bug is logged
                _log.exception("autocomplete check failed")
                permitted = False
            if not permitted:
                await interaction.response.autocomplete([])
                return False
        return True

    async def on_error(
        self, interaction: discord.Interaction[discord.Client], error: app_commands.AppCommandError
    ) -> None:
        locale = interaction.locale
        message = _user_message(error, locale)
        if message is None:
            reference = secrets.token_hex(4)
            original = getattr(error, "original", error)
            _log.error(
                "command %s failed (reference %s)",
                interaction.command.qualified_name if interaction.command else "?",
                reference,
                exc_info=original,
            )
            front_end(interaction.client).record_error()
            message = tr(
                locale,
                "Something went wrong on our side (reference `{reference}`). "
                "It was logged; give the reference to whoever runs the bot.",
                reference=reference,
            )
        if len(message) > MAX_ERROR_CHARS:  # an error may quote what the user typed
            message = message[: MAX_ERROR_CHARS - 1] + "…"
        embed = discord.Embed(description=f"⚠️ {message}", colour=discord.Colour.red())
        try:
            if interaction.response.is_done():
                try:
                    await _clear_public_thinking(interaction)
                except discord.HTTPException as exc:  # the error itself still goes out
                    _log.warning("could not clear the public reply: %s", exc)
                await interaction.followup.send(embed=embed, ephemeral=True)
            else:
                await interaction.response.send_message(embed=embed, ephemeral=True)
        except discord.HTTPException as exc:
            _log.warning("could not deliver an error message: %s", exc)


async def _clear_public_thinking(interaction: discord.Interaction[discord.Client]) -> None:
    """After a public defer, Discord makes the first follow-up fill the "thinking" message,
    ignoring its ephemeral flag, so the error would be shown to everyone; and a progress
    line already edited in ("⏳ validating") would stay up, stale. Remove that public
    message (a "thinking" one is filled first, the only way to delete it for sure), so the
    error goes out as its own ephemeral follow-up."""
    if interaction.response.type is not discord.InteractionResponseType.deferred_channel_message:
        return
    original = await interaction.original_response()
    if original.flags.ephemeral:
        return
    if original.flags.loading:
        failed = tr(interaction.locale, "⚠️ This command failed.")
        await interaction.edit_original_response(content=failed)
    await interaction.delete_original_response()


def tree_fingerprint(payload: list[dict[str, Any]]) -> str:
    """A stable hash of the command payloads, so the tree is synced only when it changed."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
