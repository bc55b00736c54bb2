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

from bot.checks import actor_of, guard_guild, member_level, refuse_level, server_id_of
from bot.embeds import Lang, clean_game_text, ok_embed
from bot.i18n import tr
from core.errors import InvalidInput
from core.permissions import Level
from core.services.server_views import SetResult
from core.services.settings_keys import Effect, Kind, SettingKey
from core.services.settings_schema import NOT_SET
from core.services.settings_values import MAX_VALUE_CHARS

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

# -- what users read --------------------------------------------------------------------------


def form_title(locale: Lang, server: str, key: str) -> str:
    title = tr(locale, "{key} on {server}", key=key, server=server)
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"


def secret_error(key: str) -> InvalidInput:
    return InvalidInput(
        "`{key}` is a secret: set it with the `value` option of `/server set`. Discord forms "
        "have no password field (a form would show it as you type), and a secret is never "
        "shown back.",
        key=key,
    )


def shown_value(locale: Lang, shown: str) -> str:
    """A value as `/server config` shows it; the two placeholders for no value are words,
    the values themselves stay as they are typed (`on`, `off`, names...)."""
    if shown == EMPTY_SHOWN:
        return tr(locale, "(none)")
    if shown == NOT_SET:
        return tr(locale, "(not set)")
    return shown


def needs_value_error(locale: Lang, key: SettingKey, shown: str) -> InvalidInput:
    return InvalidInput(
        "give the new value of `{key}` in the `value` option ({description}); now: {shown}",
        key=key.name,
        description=tr(locale, key.description),
        shown=shown_value(locale, clean_game_text(shown, 200)),
    )


def unknown_key_error(wanted: str) -> InvalidInput:
    if wanted.replace("_", "").isalnum() and len(wanted) <= 40:
        return InvalidInput(
            "`{wanted}` is not a setting of this server; pick one from the `key` list",
            wanted=wanted,
        )
    return InvalidInput("that is not a setting of this server; pick one from the `key` list")


def effect_text(locale: Lang, result: SetResult) -> str:
    """When the saved value is used (the service's `message`, in the reader's language)."""
    if result.next_start:
        return tr(locale, "saved; takes effect at the next start (restart the server to apply it)")
    if result.effect is Effect.NEXT_START:
        return tr(locale, "saved; used when the server starts")
    return tr(locale, "saved; in effect now")


# -- shared by forms and selects --------------------------------------------------------------


def setting_changed_embed(result: SetResult, locale: Lang = None) -> discord.Embed:
    """The answer to a changed setting, for the slash option and the form alike."""
    return ok_embed(tr(locale, "Setting changed"), effect_text(locale, result))


async def recheck_level(
    interaction: discord.Interaction[Any], level: Level, server: str, command: str
) -> None:
    """`require(level)` again, for a component or form answered after the command ran:
    audited (throttled as `require` does) and raised as LevelTooLow when too low."""
    server_id = server_id_of(interaction, server)
    has = await member_level(interaction, server_id)
    if has >= level:
        return
    await refuse_level(interaction, command, server_id, level, has)


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
    """Keys whose value is long enough to deserve a form; never a secret (see secret_error)."""
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
        self,
        *,
        owner_id: int,
        server: str,
        key: SettingKey,
        current: str,
        command: AppCommand,
        locale: Lang = None,
    ) -> None:
        super().__init__(title=form_title(locale, server, key.name), timeout=FORM_TIMEOUT)
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
        description = (
            tr(locale, "one entry per line; leave empty to clear")
            if key.multiline
            else tr(locale, key.description)
        )
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
            await interaction.response.send_message(
                tr(interaction.locale, "Only the person who opened this form can submit it."),
                ephemeral=True,
            )
            return False
        return True

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        await recheck_level(interaction, Level.ADMIN, self.server, SET_COMMAND)
        result = await interaction.client.services.servers.set_setting(
            actor_of(interaction), self.server, self.key.name, self.typed_value()
        )
        embed = setting_changed_embed(result, interaction.locale)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]
        await report_error(interaction, self.command, error)


async def open_setting_form(interaction: discord.Interaction[Any], server: str, key: str) -> None:
    """`/server set` without a value: open the form for a long key (as the interaction's
    first response), or say why not (InvalidInput, shown by the tree)."""
    service = interaction.client.services.servers
    wanted = key.strip().lower().replace("-", "_")
    spec = next((k for k in service.setting_keys(server, wanted) if k.name == wanted), None)
    if spec is None:
        raise unknown_key_error(wanted)
    if spec.secret:
        raise secret_error(spec.name)
    views = await service.get_settings(server)
    shown = next((v.value for v in views if v.key == spec.name), EMPTY_SHOWN)
    if not opens_form(spec):
        raise needs_value_error(interaction.locale, spec, shown)
    command = interaction.command
    assert command is not None  # only ever called from the slash command
    form = SettingForm(
        owner_id=interaction.user.id,
        server=server,
        key=spec,
        current=shown,
        command=command,
        locale=interaction.locale,
    )
    await interaction.response.send_modal(form)
