"""Lines of `/server list` and `/server channels`: one server, one channel binding each.

Kept out of the cog so cogs/servers.py holds commands only; these are plain text builders
in the reader's language.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.embeds import STATE_ICONS, Lang, format_uptime, state_text
from bot.i18n import tr
from core.services.channels import Binding
from core.services.server_views import ServerSummary

__all__ = ["bindings_text", "list_line"]


def list_line(locale: Lang, server: ServerSummary) -> str:
    """One server in `/server list`: icon, name, game, state, uptime and address."""
    state = state_text(locale, server.state)
    line = f"{STATE_ICONS.get(server.state, '')} **{server.name}** ({server.game}) — {state}"
    if server.uptime is not None:
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
