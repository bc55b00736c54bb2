"""The invite link: the scopes and the few permissions Languard needs, in one place so the
bot's logs, the CLI and the README give the same link."""

from __future__ import annotations

import discord

__all__ = ["PERMISSIONS", "SCOPES", "invite_url"]

PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)
"""What the bot does in a channel: read it, post, embed (status, alerts), attach (logs under a
flood, charts), and read its own earlier messages (status embeds edited in place). Nothing
more: no Administrator, no moderation rights in Discord itself."""

SCOPES = ("bot", "applications.commands")
"""`bot` makes it a member; `applications.commands` lets it register its slash commands."""


def invite_url(application_id: int) -> str:
    """The OAuth2 link a guild's owner opens to add the bot with exactly these rights."""
    return discord.utils.oauth_url(application_id, permissions=PERMISSIONS, scopes=SCOPES)
