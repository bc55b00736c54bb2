"""Lines of `/server list` and `/server channels`: one server, one channel binding each.

Kept out of the cog so cogs/servers.py holds commands only; these are plain text builders
in the reader's language.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.embeds import Lang, format_uptime, shown_icon, shown_state
from bot.i18n import tr
from core.services.channels import Binding
from core.services.server_views import ServerSummary

__all__ = ["bindings_text", "list_line"]


def list_line(locale: Lang, server: ServerSummary) -> str:
    """One server in `/server list`: icon, name, game (and host, when not the bot's own
    machine), state, uptime and address. A server whose host does not answer shows
    "unknown (host unreachable)" and no uptime: its last known state may be stale."""
    away = server.host_unreachable
    state = shown_state(locale, server.state, away)
    game = server.game
    if server.host != "local":
        game = tr(locale, "{game} on {host}", game=server.game, host=server.host)
    line = f"{shown_icon(server.state, away)} **{server.name}** ({game}) — {state}"
    if server.uptime is not None and not away:
        line += tr(locale, ", up {uptime}", uptime=format_uptime(server.uptime, locale))
    return line + f" — `{server.address}`"


def _binding_line(locale: Lang, binding: Binding) -> str:
    line = f"**{tr(locale, binding.kind.value)}** → <#{binding.channel_id}>"
    if binding.kind.value == "logs":
        line += " " + tr(locale, "(filter: {filter})", filter=tr(locale, binding.log_filter.value))
    if binding.alert_role:
        line += " " + tr(locale, "(mentions {role})", role=f"<@&{binding.alert_role}>")
    return line


def bindings_text(locale: Lang, bindings: Iterable[Binding]) -> str:
    """What `/server channels` answers: each bound channel, its filter and role."""
    return "\n".join(_binding_line(locale, b) for b in bindings) or tr(locale, "No channels bound.")
