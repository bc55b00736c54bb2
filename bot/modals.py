"""Forms (Discord modals) for long input: `/server set` of a multi-line or text setting.

A modal is answered later, by a separate interaction that discord.py hands to the Modal, not
to the command tree: so the submit repeats what the tree and `require` did for the slash
command (guild lock, level re-checked now, since roles may have changed meanwhile), calls the
same service method, and reports errors through the tree's one error policy.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.checks import LevelTooLow, actor_of, guard_guild, member_level, server_id_of
from bot.embeds import clean_game_text, ok_embed
from core.errors import InvalidInput
from core.permissions import Level
from core.services.servers import SetResult
from core.services.settings_schema import MAX_VALUE_CHARS, NOT_SET, Kind, SettingKey

__all__ = [
    "SettingForm",
    "open_setting_form",
    "opens_form",
    "recheck_level",
    "report_error",
    "setting_changed_embed",
]

AppCommand = app_commands.Command[Any, ..., Any] | app_commands.ContextMenu

SET_COMMAND = "server set"
FORM_TIMEOUT = 900.0
"""Seconds a form stays answerable: Discord's interaction token lives 15 minutes."""
TITLE_LIMIT, LABEL_LIMIT, DESCRIPTION_LIMIT = 45, 45, 100
VALUE_ID = "languard:setting:value"
EMPTY_SHOWN = "(none)"

# -- what users read (one place, for a later translation catalogue) --------------------------
CHANGED_TITLE = "Setting changed"
NOT_YOURS = "Only the person who opened this form can submit it."
LINES_HINT = "one entry per line; leave empty to clear"


def form_title(server: str, key: str) -> str:
    title = f"{key} on {server}"
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"


def secret_text(key: str) -> str:
    return (
        f"`{key}` is a secret: set it with the `value` option of `/server set`. Discord forms "
        "have no password field (a form would show it as you type), and a secret is never "
        "shown back."
    )


def needs_value_text(key: SettingKey, shown: str) -> str:
    return (
        f"give the new value of `{key.name}` in the `value` option ({key.description}); "
        f"now: {clean_game_text(shown, 200)}"
    )


def unknown_key_text(wanted: str) -> str:
    shown = f"`{wanted}`" if wanted.replace("_", "").isalnum() and len(wanted) <= 40 else "that"
    return f"{shown} is not a setting of this server; pick one from the `key` list"


# -- shared by forms and selects --------------------------------------------------------------


def setting_changed_embed(result: SetResult) -> discord.Embed:
    """The answer to a changed setting, for the slash option and the form alike."""
    return ok_embed(CHANGED_TITLE, clean_game_text(result.message, 500))


async def recheck_level(
    interaction: discord.Interaction[Any], level: Level, server: str, command: str
) -> None:
    """`require(level)` again, for a component or form answered after the command ran:
    audited (throttled as `require` does) and raised as LevelTooLow when too low."""
    server_id = server_id_of(interaction, server)
    has = await member_level(interaction, server_id)
    if has >= level:
        return
    bot = interaction.client
    if bot.audit_throttle.allow(("level", interaction.user.id, command, server_id)):
        await bot.services.audit.record(
            actor_of(interaction),
            f"denied:{command}",
            server_id=server_id,
            arguments={"needed": level.label, "has": has.label},
            result="refused: level too low",
            ok=False,
        )
    raise LevelTooLow(level, has)


async def report_error(
    interaction: discord.Interaction[Any], command: AppCommand, error: Exception
) -> None:
    """Answer through the tree's error policy (user errors shown, bugs logged with a
    reference), as if the command itself had raised."""
    wrapped = (
        error
        if isinstance(error, app_commands.AppCommandError)
        else app_commands.CommandInvokeError(command, error)
    )
    await interaction.client.tree.on_error(interaction, wrapped)


# -- /server set ------------------------------------------------------------------------------


def opens_form(key: SettingKey) -> bool:
    """Keys whose value is long enough to deserve a form; never a secret (see secret_text)."""
    return not key.secret and (key.multiline or key.kind is Kind.TEXT)


def _prefill(key: SettingKey, shown: str) -> str | None:
    if key.secret or shown in (EMPTY_SHOWN, NOT_SET):
        return None
    if key.multiline:
        shown = "\n".join(part.strip() for part in shown.split(key.separator))
    return shown[:MAX_VALUE_CHARS] or None


class SettingForm(discord.ui.Modal):
    """One text box for one key of one server; submitted only by whoever opened it."""

    def __init__(
        self, *, owner_id: int, server: str, key: SettingKey, current: str, command: AppCommand
    ) -> None:
        super().__init__(title=form_title(server, key.name), timeout=FORM_TIMEOUT)
        self.owner_id = owner_id
        self.server = server
        self.key = key
        self.command = command
        self.field: discord.ui.TextInput[SettingForm] = discord.ui.TextInput(
            custom_id=VALUE_ID,
            style=discord.TextStyle.long if key.multiline else discord.TextStyle.short,
            default=_prefill(key, current),
            required=not key.multiline,
            max_length=min(key.max_length or MAX_VALUE_CHARS, MAX_VALUE_CHARS),
        )
        description = LINES_HINT if key.multiline else key.description
        self.add_item(
            discord.ui.Label(
                text=key.name[:LABEL_LIMIT],
                description=description[:DESCRIPTION_LIMIT],
                component=self.field,
            )
        )

    def typed_value(self) -> str:
        """The box as `/server set` takes it: lines joined with the key's separator, and an
        emptied list as `-` (which clears it)."""
        text = self.field.value
        if not self.key.multiline:
            return text
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return self.key.separator.join(lines) or "-"

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if not await guard_guild(interaction):
            return False
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            return False
        return True

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        await recheck_level(interaction, Level.ADMIN, self.server, SET_COMMAND)
        result = await interaction.client.services.servers.set_setting(
            actor_of(interaction), self.server, self.key.name, self.typed_value()
        )
        await interaction.response.send_message(embed=setting_changed_embed(result), ephemeral=True)

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]
        await report_error(interaction, self.command, error)


async def open_setting_form(interaction: discord.Interaction[Any], server: str, key: str) -> None:
    """`/server set` without a value: open the form for a long key (as the interaction's
    first response), or say why not (InvalidInput, shown by the tree)."""
    service = interaction.client.services.servers
    wanted = key.strip().lower().replace("-", "_")
    spec = next((k for k in service.setting_keys(server, wanted) if k.name == wanted), None)
    if spec is None:
        raise InvalidInput(unknown_key_text(wanted))
    if spec.secret:
        raise InvalidInput(secret_text(spec.name))
    views = await service.get_settings(server)
    shown = next((v.value for v in views if v.key == spec.name), EMPTY_SHOWN)
    if not opens_form(spec):
        raise InvalidInput(needs_value_text(spec, shown))
    command = interaction.command
    assert command is not None  # only ever called from the slash command
    form = SettingForm(
        owner_id=interaction.user.id, server=server, key=spec, current=shown, command=command
    )
    await interaction.response.send_modal(form)
