"""/help shows each member what they may use, at their level, and the bot's version.

The expected lists are computed from the bot's own command tree and the levels `require`
recorded there, so the test follows new commands; what is checked is the answer the fake
Discord received: ephemeral, one embed within Discord's limits, the commands at or below
the member's level and none above it.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from discord import app_commands

from bot.checks import command_level
from bot.client import COGS
from core.permissions import Level
from tests.e2e.fake_discord import FakeMember, FakeMessage, FakeUser
from tests.e2e.product import Product, open_product, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCOPED_SERVER = "help-alpha"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("help")) as opened:
        await opened.stop_bot()  # every cog, /status too
        await opened.start_bot(COGS)
        yield opened


def levels(product: Product) -> dict[str, tuple[Level, bool]]:
    """Every slash command: its level and whether it names a server."""
    return {
        command.qualified_name: (
            command_level(command),
            any(p.name == "server" for p in command.parameters),
        )
        for command in product.running.tree.walk_commands()
        if isinstance(command, app_commands.Command)
    }


async def ask_help(product: Product, who: FakeUser | FakeMember) -> FakeMessage:
    msg = await product.reply("help", user=who)
    assert msg.ephemeral, "the help answer is visible to everyone"
    assert len(msg.embeds) == 1, msg.embeds
    embed = msg.embeds[0]
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len((embed.get("footer") or {}).get("text", ""))
    fields = embed.get("fields") or []
    assert len(fields) <= 25
    for item in fields:
        assert 0 < len(item["value"]) <= 1024 and 0 < len(item["name"]) <= 256, item
        total += len(item["name"]) + len(item["value"])
    assert total <= 6000, total
    return msg


def listed(msg: FakeMessage) -> set[str]:
    """The commands listed in the answer's fields, one a line (`/server start` — ...)."""
    lines = [
        line for item in msg.embeds[0].get("fields") or [] for line in item["value"].split("\n")
    ]
    return {m[1] for line in lines if (m := re.match(r"`/([a-z0-9_ -]+)` — ", line))}


async def test_a_viewer_sees_the_viewer_commands_only(product: Product) -> None:
    every = levels(product)
    msg = await ask_help(product, product.cast.viewer)
    wanted = {name for name, (level, _) in every.items() if level <= Level.VIEWER}
    assert listed(msg) == wanted, text_of(msg)
    assert {"server list", "server status", "help", "host"} <= wanted
    assert "server start" not in listed(msg)
    assert "Your level: **viewer**" in text_of(msg)


async def test_an_admin_sees_every_command_and_the_version(product: Product) -> None:
    every = levels(product)
    msg = await ask_help(product, product.cast.admin)
    assert listed(msg) == set(every), text_of(msg)
    footer = (msg.embeds[0].get("footer") or {}).get("text", "")
    assert importlib.metadata.version("languard") in footer, footer
    # one field per group, each line the command's description
    server_start = next(
        c for c in product.running.tree.walk_commands() if c.qualified_name == "server start"
    )
    assert f"`/server start` — {server_start.description}" in text_of(msg)
    names = [item["name"] for item in msg.embeds[0]["fields"]]
    assert any(name.startswith("/server") for name in names), names
    assert any(name.startswith("/players") for name in names), names


async def test_a_member_without_a_level_sees_only_help(product: Product) -> None:
    msg = await ask_help(product, product.cast.nobody)
    assert listed(msg) == {"help"}, text_of(msg)
    assert "/perms grant" in text_of(msg)  # says how to get a level


async def test_a_level_on_one_server_shows_the_commands_that_name_it(product: Product) -> None:
    await product.create_server(SCOPED_SERVER)
    role = product.fake.add_role("Help Ops")
    sam = product.fake.add_user("help-sam", roles=[role])
    await product.fake.resync_guild()
    granted = await product.reply(
        "perms grant", {"role": role, "level": "operator", "server": SCOPED_SERVER}
    )
    assert "now **operator**" in text_of(granted), text_of(granted)
    every = levels(product)
    msg = await ask_help(product, sam)
    wanted = {
        name
        for name, (level, names_a_server) in every.items()
        if level == Level.NONE or (names_a_server and level <= Level.OPERATOR)
    }
    assert listed(msg) == wanted, text_of(msg)
    assert "server start" in wanted and "perms list" not in wanted
    assert "you are **operator**" in text_of(msg)
