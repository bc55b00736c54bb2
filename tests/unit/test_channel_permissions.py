"""Which permissions each kind of channel binding needs, and the refusal a user reads."""

from __future__ import annotations

import discord
import pytest

from bot.channel_permissions import (
    REQUIRED,
    ChannelProblem,
    missing_permissions,
    refusal_text,
)
from core.services.channels import ChannelKind

EVERYTHING = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)


def without(**denied: bool) -> discord.Permissions:
    permissions = discord.Permissions(EVERYTHING.value)
    permissions.update(**{flag: False for flag in denied})
    return permissions


def test_every_channel_kind_has_requirements() -> None:
    assert set(REQUIRED) == {kind.value for kind in ChannelKind}
    for kind in ChannelKind:
        assert missing_permissions(EVERYTHING, kind) == []
        assert missing_permissions(EVERYTHING, kind.value) == []


@pytest.mark.parametrize(
    ("kind", "denied", "expected"),
    [
        ("logs", {"send_messages": True}, ["Send Messages"]),
        ("logs", {"send_messages": True, "attach_files": True}, ["Send Messages", "Attach Files"]),
        ("logs", {"embed_links": True}, []),  # log lines are code blocks, never embeds
        ("alerts", {"embed_links": True}, ["Embed Links"]),
        ("alerts", {"attach_files": True}, []),  # a crash's last lines sit in the embed
        ("status", {"read_message_history": True}, ["Read Message History"]),
        ("status", {"embed_links": True}, ["Embed Links"]),
        ("chat", {"attach_files": True}, ["Attach Files"]),  # a chat flood goes out as a file
        ("chat", {"view_channel": True}, ["View Channel"]),
    ],
)
def test_missing_permissions_names_what_a_kind_lacks(
    kind: str, denied: dict[str, bool], expected: list[str]
) -> None:
    assert missing_permissions(without(**denied), kind) == expected


def test_nothing_and_administrator() -> None:
    assert missing_permissions(discord.Permissions.none(), "logs") == [
        "View Channel",
        "Send Messages",
        "Attach Files",
        "Read Message History",
    ]
    assert missing_permissions(discord.Permissions(administrator=True), "status") == []
    with pytest.raises(ValueError, match="unknown channel kind"):
        missing_permissions(EVERYTHING, "voice")


def test_the_refusal_names_each_channel_what_is_missing_and_the_fix() -> None:
    text = refusal_text(
        [
            ChannelProblem(1, "logs", ("logs",), ("Send Messages", "Attach Files")),
            ChannelProblem(2, "ops_*alerts*", ("alerts", "status"), ("Embed Links",)),
        ],
        "Languard",
    )
    assert "nothing was changed" in text
    assert "#logs: Send Messages, Attach Files (for logs)" in text
    assert "#ops\\_\\*alerts\\*: Embed Links (for alerts, status)" in text  # escaped
    assert "the **Languard** role" in text and "/server channels" in text
    assert "my role" in refusal_text([ChannelProblem(1, "x", ("chat",), ("View Channel",))])
