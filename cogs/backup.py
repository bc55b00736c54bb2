"""/backup: take one now, list, restore (admin, confirmed), delete, and each server's settings.

Taking and restoring are long jobs in the host's one job queue: the reply shows the job's
place in the queue, then its step and bytes, then what came of it. Everything else is the
BackupService's: this module only asks and renders.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.autocomplete import chosen_server, server_names
from bot.checks import BACKUP_RATE, actor_of, limit, require, server_id_of
from bot.client import LanguardBot
from bot.embeds import (
    clean_game_text,
    error_embed,
    format_bytes,
    info_embed,
    ok_embed,
    strip_terminal,
)
from bot.i18n import error_text, tr
from bot.job_progress import JobProgress
from bot.paginator import ListSource, Noun, Paginator, send_pages
from bot.views import confirm
from core.backups.layout import BackupKind
from core.backups.manifest import MAX_NOTE_CHARS
from core.backups.retention import DAY, MAX_AGE, MAX_KEEP, MIN_AGE
from core.errors import LanguardError
from core.paging import MAX_PAGE
from core.permissions import Level
from core.services.backups import BackupInfo, BackupPolicyView, BackupResult, RestoreResult

Locale = discord.Locale | None

BACKUPS_PER_PAGE = 10
NAME_MIN, NAME_MAX = 16, 19
"""A backup's name: `20240131T120000Z`, `-2`... `-99` for several in one second."""
EXCLUDE_MAX = 6000
"""Discord's longest text option; the service counts the globs (at most 50 of 200 characters)."""
SHOWN_PRUNED = 10
_PRE_RESTORE_NOTE = "before restoring "
"""The note a restore gives the backup of the state it replaced (core.backups.runs)."""


def _count(locale: Locale, count: int, one: str, many: str) -> str:
    """`count` with the noun in the reader's language's plural rule."""
    return Noun(one, many, locale).count(count)


def _files(locale: Locale, count: int) -> str:
    return _count(locale, count, tr(locale, "{count} file"), tr(locale, "{count} files"))


def _code(text: str) -> str:
    """Text shown in a code span: no backticks to close it, no control characters."""
    return strip_terminal(text).replace("`", "'")


def _note_text(locale: Locale, info: BackupInfo) -> str:
    if info.kind is BackupKind.PRE_RESTORE and info.note.startswith(_PRE_RESTORE_NOTE):
        name = info.note.removeprefix(_PRE_RESTORE_NOTE)
        return tr(locale, "before restoring `{name}`", name=_code(name)[:30])
    return f"“{clean_game_text(info.note, 100)}”" if info.note else ""


def backup_line(locale: Locale, info: BackupInfo) -> str:
    """One backup in a list: name, time, kind, size, files, and what marks it."""
    parts = [
        f"`{info.name}`",
        f"<t:{int(info.created)}:f>",
        tr(locale, info.kind.value),
        format_bytes(info.size),
        _files(locale, info.files),
    ]
    if info.cold:
        parts.append(tr(locale, "cold"))
    if info.mirrored:
        parts.append(tr(locale, "also on the second destination"))
    note = _note_text(locale, info)
    if note:
        parts.append(note)
    return " · ".join(parts)


def _mirror_text(locale: Locale, outcome: str) -> str:
    if outcome == "copied":
        return tr(locale, "📀 Copied to the second destination too.")
    if outcome == "unavailable":
        return tr(locale, "⚠️ The second destination is not mounted: this backup is only here.")
    if outcome == "full":
        return tr(locale, "⚠️ The second destination is full: this backup is only here.")
    if outcome == "failed":
        return tr(locale, "⚠️ Copying to the second destination failed: this backup is only here.")
    return ""


def backup_summary(locale: Locale, server: str, result: BackupResult) -> discord.Embed:
    info = result.backup
    lines = [
        tr(
            locale,
            "`{name}`: {size} on disk, {files} ({data} before compression).",
            name=info.name,
            size=format_bytes(info.size),
            files=_files(locale, info.files),
            data=format_bytes(info.data_bytes),
        )
    ]
    if info.note:
        lines.append(tr(locale, "Note: {note}", note=clean_game_text(info.note, 200)))
    if result.paused_saves:
        lines.append(tr(locale, "The game's saving was paused during the copy."))
    if result.restarted is True:
        lines.append(tr(locale, "The server was stopped for the copy and runs again."))
    elif result.restarted is False:
        lines.append(
            tr(
                locale,
                "⚠️ The server was stopped for the copy and is not running again: "
                "see `/server status`.",
            )
        )
    if result.pruned:
        shown = ", ".join(f"`{name}`" for name in result.pruned[:SHOWN_PRUNED])
        more = " …" if len(result.pruned) > SHOWN_PRUNED else ""
        pruned = _count(
            locale,
            len(result.pruned),
            tr(locale, "{count} old backup pruned"),
            tr(locale, "{count} old backups pruned"),
        )
        lines.append(f"{pruned}: {shown}{more}")
    mirror = _mirror_text(locale, result.mirror)
    if mirror:
        lines.append(mirror)
    title = tr(locale, "Backup of {server} taken", server=server)
    return ok_embed(title, "\n".join(lines))


def restore_summary(locale: Locale, result: RestoreResult) -> discord.Embed:
    text = tr(
        locale,
        "Backup `{backup}` is back in place: {files}, each checked against its manifest; "
        "{removed} that it did not hold removed.\n"
        "The state before the restore is kept as backup `{saved}`: restore that one to undo. "
        "Start the server with `/server start`.",
        backup=result.backup,
        files=_files(locale, result.files),
        removed=_files(locale, result.removed),
        saved=result.saved_as,
    )
    return ok_embed(tr(locale, "{server} restored", server=result.server), text)


def _age_text(locale: Locale, days: float) -> str:
    if days >= 1:
        return tr(locale, "{days:g} days", days=round(days, 2))
    return tr(locale, "{hours:g} hours", hours=round(days * 24, 2))


def policy_embed(
    locale: Locale, server: str, view: BackupPolicyView, changed: bool
) -> discord.Embed:
    default = " " + tr(locale, "(default)")
    keep = f"**{view.keep}**" + (default if view.keep_is_default else "")
    age = f"**{_age_text(locale, view.max_age_days)}**" + (default if view.age_is_default else "")
    if view.excludes:
        excludes = ", ".join(f"`{_code(g)}`" for g in view.excludes)
    else:
        excludes = tr(locale, "nothing beyond the game's own rules")
    text = "\n".join(
        [
            tr(locale, "Backups kept: at most {keep}", keep=keep),
            tr(locale, "Kept for: at most {age}", age=age),
            tr(locale, "Left out: {excludes}", excludes=excludes),
        ]
    )
    if changed:
        return ok_embed(tr(locale, "Backup settings of {server} changed", server=server), text)
    return info_embed(tr(locale, "Backup settings of {server}", server=server), text)


def parse_excludes(text: str) -> list[str]:
    """`*.bak, /world/DIM-1` → the globs; `-` alone clears them."""
    if text.strip() == "-":
        return []
    return [glob.strip() for glob in text.split(",") if glob.strip()]


async def backup_names(
    interaction: discord.Interaction[LanguardBot], current: str
) -> list[app_commands.Choice[str]]:
    """The chosen server's backups, newest first (the tree has checked the level)."""
    server = chosen_server(interaction)
    if server is None:
        return []
    names = await interaction.client.services.backups.names(server, current)
    return [app_commands.Choice(name=name, value=name) for name in names]


async def _all_backups(bot: LanguardBot, server: str) -> list[BackupInfo]:
    """Every backup of `server`, newest first, a service page at a time."""
    service = bot.services.backups
    found: list[BackupInfo] = []
    while True:
        page = await service.list(server, len(found), MAX_PAGE)
        found.extend(page.items)
        if not page.items or len(found) >= page.total:
            return found


async def _show_error(interaction: discord.Interaction[LanguardBot], exc: LanguardError) -> None:
    """After a confirmation, the refusal replaces the question (and its buttons)."""
    embed = error_embed(error_text(interaction.locale, exc))
    await interaction.edit_original_response(content=None, embed=embed, view=None)


@app_commands.guild_only()
class Backup(commands.GroupCog, group_name="backup", description="Server backups and restores"):
    def __init__(self, bot: LanguardBot) -> None:
        self.bot = bot

    @app_commands.command(name="now", description="Back a server up now")
    @app_commands.describe(
        server="The server to back up",
        note="A few words kept with the backup, up to 200 characters",
        cold="Stop the server for the copy and start it again (default: no)",
    )
    @app_commands.autocomplete(server=server_names)
    @limit(BACKUP_RATE)
    @require(Level.OPERATOR)
    async def now(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        note: app_commands.Range[str, 0, MAX_NOTE_CHARS] | None = None,
        cold: bool = False,
    ) -> None:
        locale = interaction.locale
        await interaction.response.defer()
        progress = JobProgress(interaction, tr(locale, "Backing up {server}", server=server))
        job = self.bot.services.backups.backup(
            actor_of(interaction), server, note=note or "", cold=cold, on_update=progress
        )
        result = await job.result()
        embed = backup_summary(locale, result.backup.server, result)
        await interaction.edit_original_response(content=None, embed=embed)

    @app_commands.command(name="list", description="A server's backups, newest first")
    @app_commands.describe(server="The server whose backups to list")
    @app_commands.autocomplete(server=server_names)
    @require(Level.OPERATOR)
    async def list_(self, interaction: discord.Interaction[LanguardBot], server: str) -> None:
        locale = interaction.locale
        backups = await _all_backups(self.bot, server)
        total = sum(b.size for b in backups)
        view = Paginator(
            ListSource([backup_line(locale, b) for b in backups], BACKUPS_PER_PAGE),
            owner=interaction.user,
            title=tr(locale, "{server}: backups", server=server),
            noun=Noun(tr(locale, "{count} backup"), tr(locale, "{count} backups"), locale),
            empty=tr(locale, "No backups yet: `/backup now`."),
            note=tr(locale, "{size} on disk in all.", size=format_bytes(total)) if backups else "",
            level=Level.OPERATOR,
            server_id=server_id_of(interaction, server),
            locale=locale,
        )
        await send_pages(interaction, view, ephemeral=True)

    @app_commands.command(name="restore", description="Put a backup back (the server stopped)")
    @app_commands.describe(
        server="The server to restore; stop it first",
        backup="The backup to put back (pick it from the list)",
    )
    @app_commands.autocomplete(server=server_names, backup=backup_names)
    @limit(BACKUP_RATE)
    @require(Level.ADMIN)
    async def restore(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        backup: app_commands.Range[str, NAME_MIN, NAME_MAX],
    ) -> None:
        service = self.bot.services.backups
        locale = interaction.locale
        service.check_restore(server, backup)  # a running server is refused before asking
        question = tr(
            locale,
            "Restore **{server}** to backup `{backup}`? Its files are replaced; "
            "the current state is saved as a backup first.",
            server=server,
            backup=backup,
        )
        if not await confirm(interaction, question, tr(locale, "Restore")):
            return
        progress = JobProgress(interaction, tr(locale, "Restoring {server}", server=server))
        try:
            job = service.restore(actor_of(interaction), server, backup, on_update=progress)
            result = await job.result()
        except LanguardError as exc:
            await _show_error(interaction, exc)
            return
        embed = restore_summary(locale, result)
        await interaction.edit_original_response(content=None, embed=embed, view=None)

    @app_commands.command(name="delete", description="Delete one backup (from both destinations)")
    @app_commands.describe(
        server="The server it belongs to",
        backup="The backup to delete (pick it from the list)",
    )
    @app_commands.autocomplete(server=server_names, backup=backup_names)
    @require(Level.ADMIN)
    async def delete(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        backup: app_commands.Range[str, NAME_MIN, NAME_MAX],
    ) -> None:
        locale = interaction.locale
        question = tr(
            locale,
            "Delete backup `{backup}` of **{server}**? This cannot be undone.",
            backup=backup,
            server=server,
        )
        if not await confirm(interaction, question, tr(locale, "Delete")):
            return
        try:
            removed = await self.bot.services.backups.delete(actor_of(interaction), server, backup)
        except LanguardError as exc:
            await _show_error(interaction, exc)
            return
        text = tr(
            locale,
            "🗑️ Backup `{backup}` of {server} deleted ({size} freed).",
            backup=removed.name,
            server=removed.server,
            size=format_bytes(removed.size),
        )
        await interaction.edit_original_response(content=text, view=None)

    @app_commands.command(
        name="settings", description="How many backups to keep, how long, what not"
    )
    @app_commands.describe(
        server="The server whose backup settings to show or change",
        keep="Keep at most this many backups, 1-1000",
        max_age_days="Delete backups older than this many days (an hour is 0.0417)",
        exclude="Globs to leave out, comma-separated (`*.bak, /world/DIM-1`); `-` for none",
        reset="Go back to the operator's defaults (and no globs) first",
    )
    @app_commands.autocomplete(server=server_names)
    @require(Level.ADMIN)
    async def settings(
        self,
        interaction: discord.Interaction[LanguardBot],
        server: str,
        keep: app_commands.Range[int, 1, MAX_KEEP] | None = None,
        max_age_days: app_commands.Range[float, MIN_AGE / DAY, MAX_AGE / DAY] | None = None,
        exclude: app_commands.Range[str, 1, EXCLUDE_MAX] | None = None,
        reset: bool = False,
    ) -> None:
        service = self.bot.services.backups
        locale = interaction.locale
        changing = reset or keep is not None or max_age_days is not None or exclude is not None
        if changing:
            view = await service.set_policy(
                actor_of(interaction),
                server,
                keep=keep,
                max_age_days=max_age_days,
                excludes=None if exclude is None else parse_excludes(exclude),
                reset=reset,
            )
        else:
            view = await service.get_policy(server)
        name = self.bot.services.servers.ref(server).name
        embed = policy_embed(locale, name, view, changing)
        await interaction.response.send_message(embed=embed, ephemeral=not changing)


async def setup(bot: LanguardBot) -> None:
    await bot.add_cog(Backup(bot))
