"""What `/mods` and `/server mods` show: a mod's line, a server's set, what an add or an
import did, and the summary of an update-aware maintenance.

Plain values from the mod services (core/services/mod_views.py, mod_maintenance.py) in,
embeds out, every word through `tr` for the reader's locale. Names come from the Workshop
or a member's preset, so they are shown through `clean_game_text` (no markdown, no pings).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import discord

from bot.checks import actor_of
from bot.embeds import clean_game_text, fit_lines, format_bytes, info_embed, ok_embed
from bot.i18n import error_text, tr
from bot.paginator import Noun
from bot.services_access import services_of
from core.errors import LanguardError
from core.mods import Role
from core.services.mod_maintenance import MaintenanceReport, ServerOutcome
from core.services.mod_views import DownloadResult, ModsAdded, ModView, ServerMods

__all__ = [
    "added_embed",
    "mod_line",
    "mod_names_text",
    "report_embed",
    "role_text",
    "server_mods_embed",
    "server_mods_reply",
]

Locale = discord.Locale | None
SHOWN_NAMES = 15


def role_text(locale: Locale, role: Role) -> str:
    if role is Role.SERVER:
        return tr(locale, "server-only")
    if role is Role.HEADLESS:
        return tr(locale, "headless-only")
    return tr(locale, "client")


def _name(view: ModView) -> str:
    return f"**{clean_game_text(view.name, 60)}**"


def mod_names_text(locale: Locale, views: Iterable[ModView]) -> str:
    """`**CBA_A3**, **ACE** +3 more`."""
    every = list(views)
    shown = ", ".join(_name(v) for v in every[:SHOWN_NAMES])
    more = len(every) - SHOWN_NAMES
    return shown + (" " + tr(locale, "+{count} more", count=more) if more > 0 else "")


def mod_line(locale: Locale, view: ModView) -> str:
    """One mod of the library: name, id, size, Workshop date, state, servers using it."""
    parts = [f"{_name(view)} `{view.id}`"]
    if view.size:
        parts.append(format_bytes(view.size))
    if view.time_updated:
        parts.append(tr(locale, "updated <t:{at}:d>", at=view.time_updated))
    if not view.installed:
        parts.append(tr(locale, "⬇️ not downloaded yet"))
    elif view.update_available:
        parts.append(tr(locale, "⬆️ update available"))
    if view.pinned:
        parts.append(tr(locale, "📌 pinned"))
    if view.servers:
        parts.append(tr(locale, "used by {servers}", servers=", ".join(view.servers)))
    else:
        parts.append(tr(locale, "used by no server"))
    return " · ".join(parts)


def server_mods_embed(locale: Locale, view: ServerMods, changed: bool) -> discord.Embed:
    """A server's set in load order, with roles, what is missing, and when it applies."""
    lines = [
        f"`{n}.` `{row.mod.folder}` {_name(row.mod)} — {role_text(locale, row.role)}"
        for n, row in enumerate(view.mods, start=1)
    ]
    if not lines:
        lines.append(
            tr(
                locale,
                "No managed mods: the server loads its `mods` setting alone. "
                "Give it some with `/server mods set:`.",
            )
        )
    if view.missing:
        missing = ", ".join(clean_game_text(name, 60) for name in view.missing[:SHOWN_NAMES])
        lines.append(
            tr(
                locale,
                "⚠️ Not downloaded yet, so the server will not start: {mods}. "
                "Download them with `/mods update`.",
                mods=missing,
            )
        )
    if changed and view.next_start:
        lines.append(tr(locale, "The server runs now: the new set applies at its next start."))
    body = fit_lines(lines, locale=locale)
    if changed:
        return ok_embed(tr(locale, "Mods of {server} set", server=view.server), body)
    return info_embed(tr(locale, "Mods of {server}", server=view.server), body)


def added_embed(
    locale: Locale,
    added: ModsAdded,
    result: DownloadResult | None,
    failure: LanguardError | None,
) -> discord.Embed:
    """What an add or an import put in the library, and how its download went."""
    lines: list[str] = []
    if added.added:
        lines.append(tr(locale, "Added: {mods}", mods=mod_names_text(locale, added.added)))
    if added.already:
        text = mod_names_text(locale, added.already)
        lines.append(tr(locale, "Already in the library: {mods}", mods=text))
    if added.unknown:
        ids = ", ".join(f"`{i}`" for i in added.unknown[:SHOWN_NAMES])
        lines.append(tr(locale, "Not an Arma 3 mod on the Workshop (left out): {ids}", ids=ids))
    if added.local:
        local = ", ".join(clean_game_text(n, 60) for n in added.local[:SHOWN_NAMES])
        lines.append(
            tr(
                locale,
                "Local mods, not on the Workshop: {mods}. Put them in the server folder "
                "and name them in its `mods` setting.",
                mods=local,
            )
        )
    if added.dlc:
        dlc = ", ".join(clean_game_text(n, 60) for n in added.dlc[:SHOWN_NAMES])
        lines.append(tr(locale, "DLC, which comes with the game: {names}", names=dlc))
    if added.duplicates:
        lines.append(tr(locale, "Rows named twice, read once: {count}", count=added.duplicates))
    if result is not None:
        lines.append(
            tr(locale, "✅ Downloaded: {mods}", mods=mod_names_text(locale, result.installed))
        )
        if result.servers:
            servers = ", ".join(result.servers)
            lines.append(
                tr(locale, "Server folders brought up to date: {servers}", servers=servers)
            )
    elif added.job is None and failure is None:
        lines.append(tr(locale, "Nothing to download: every mod is on disk already."))
    if failure is not None:
        lines.append("⚠️ " + error_text(locale, failure))
    body = fit_lines(lines, locale=locale)
    if added.preset:
        title = tr(locale, "Preset {name} imported", name=clean_game_text(added.preset, 80))
    elif len(added.added) == 1:
        title = tr(locale, "Mod added")
    else:
        title = tr(locale, "Mod library")
    return info_embed(title, body) if failure is not None else ok_embed(title, body)


def _count(locale: Locale, count: int, one: str, many: str) -> str:
    return Noun(one, many, locale).count(count)


def _server_line(locale: Locale, outcome: ServerOutcome, failed: bool) -> str:
    name = outcome.name
    if not outcome.was_running:
        if failed:
            return ""  # nothing new reached its folder: nothing to say about it
        return tr(locale, "**{server}** was not running: its folder is up to date.", server=name)
    if outcome.problem is not None:
        error = error_text(locale, outcome.problem)
        return tr(locale, "⚠️ **{server}** is not running again: {error}", server=name, error=error)
    parts = [tr(locale, "✅ **{server}** runs again", server=name)]
    if outcome.warnings:
        warned = _count(
            locale,
            outcome.warnings,
            tr(locale, "{count} warning said"),
            tr(locale, "{count} warnings said"),
        )
        parts.append(warned)
    kicked = _count(
        locale,
        outcome.kicked,
        tr(locale, "{count} player kicked"),
        tr(locale, "{count} players kicked"),
    )
    parts.append(kicked)
    if outcome.verified is True:
        parts.append(tr(locale, "all {count} mods seen loaded", count=outcome.expected))
    elif outcome.verified is False:
        missing = ", ".join(f"`{path}`" for path in outcome.not_loaded[:SHOWN_NAMES])
        parts.append(tr(locale, "⚠️ not seen loaded: {mods}", mods=missing))
    elif outcome.expected:
        parts.append(tr(locale, "⚠️ its log showed no list of mods"))
    return " · ".join(parts)


def report_embed(locale: Locale, report: MaintenanceReport) -> discord.Embed:
    """The one summary of a `/mods update`."""
    held = (
        tr(
            locale,
            "Held at their version (pinned): {mods}",
            mods=mod_names_text(locale, report.held),
        )
        if report.held
        else ""
    )
    if report.up_to_date:
        text = tr(locale, "Nothing new on the Workshop: no server was touched.")
        return info_embed(tr(locale, "Mods are up to date"), "\n".join(filter(None, [text, held])))
    lines: list[str] = []
    if report.mods:
        lines.append(tr(locale, "Downloaded: {mods}", mods=mod_names_text(locale, report.mods)))
    if report.game is not None:
        if report.game.up_to_date:
            lines.append(tr(locale, "The game server was up to date already."))
        else:
            lines.append(tr(locale, "The game server was updated."))
    if held:
        lines.append(held)
    if report.failure is not None:
        error = error_text(locale, report.failure)
        lines.append(tr(locale, "⚠️ The update failed: {error}", error=error))
    failed = report.failure is not None
    lines += filter(None, (_server_line(locale, s, failed) for s in report.servers))
    body = fit_lines(lines, locale=locale)
    troubled = report.failure is not None or any(
        s.problem is not None or s.verified is False for s in report.servers
    )
    if troubled:
        return info_embed(tr(locale, "Mod update finished with problems"), body)
    return ok_embed(tr(locale, "Mod update done"), body)


async def server_mods_reply(
    interaction: discord.Interaction[Any], server: str, text: str | None
) -> None:
    """`/server mods`: show a server's set (to the asker), or set it from `text` (for all
    to see); `-` alone empties it (the `mods` setting alone applies again)."""
    mods = services_of(interaction.client).mods
    locale = interaction.locale
    if text is None:
        view = await mods.server_mods(server)
        embed = server_mods_embed(locale, view, False)
        await interaction.response.send_message(embed=embed, ephemeral=True)
        return
    await interaction.response.defer()
    wanted = "" if text.strip() == "-" else text
    view = await mods.set_server_mods(actor_of(interaction), server, wanted)
    await interaction.followup.send(embed=server_mods_embed(locale, view, True))
