"""French members get Languard in French: the command tree Discord shows them and /help.

The tree is read from what the fake Discord received at sync (the fake now refuses bad
localizations as Discord does), so the test sees what a French client shows: every command,
option and choice carries an `fr` name and description, names follow Discord's rule and stay
distinct among siblings. /help is then run as a member whose client is French and as one
whose client is American English; the French answer names each command as the member's
client shows it (the synced `fr` localizations), the English one is unchanged.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from discord import app_commands

from bot.checks import command_level
from bot.client import COGS
from core.permissions import Level
from tests.e2e.fake_discord import FakeMember, FakeMessage
from tests.e2e.fake_discord.localizations import valid_name
from tests.e2e.product import REPLY_TIMEOUT, Product, open_product, synced, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
FR = "fr"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("localization")) as opened:
        await opened.stop_bot()  # every cog, /status too
        await opened.start_bot(COGS)
        yield opened


def is_command(item: dict[str, Any], top: bool) -> bool:
    return top or int(item.get("type", SUB_COMMAND)) in (SUB_COMMAND, SUB_COMMAND_GROUP)


def siblings(
    items: list[dict[str, Any]], path: str = ""
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(parent path, its children) for the top level and every command and group."""
    yield path or "/", items
    for item in items:
        if is_command(item, not path):
            here = f"{path} {item['name']}".strip()
            yield from siblings(item.get("options") or [], here)


def french_paths(commands: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """English command path -> (French path, French description), from the synced payload."""
    found: dict[str, tuple[str, str]] = {}

    def walk(items: list[dict[str, Any]], english: str, french: str) -> None:
        for item in items:
            if not is_command(item, not english):
                continue
            en = f"{english} {item['name']}".strip()
            fr = f"{french} {item['name_localizations'][FR]}".strip()
            found[en] = (fr, item["description_localizations"][FR])
            walk(item.get("options") or [], en, fr)

    walk(commands, "", "")
    return found


async def ask_help(product: Product, who: FakeMember, locale: str) -> FakeMessage:
    handle = await product.fake.invoke_slash("help", user=who, locale=locale)
    msg = await handle.message(REPLY_TIMEOUT)
    assert msg.ephemeral and len(msg.embeds) == 1, msg.embeds
    return msg


def help_lines(msg: FakeMessage) -> dict[str, str]:
    """`/path` -> description, for each command line of the answer's fields."""
    lines = [
        line for item in msg.embeds[0].get("fields") or [] for line in item["value"].split("\n")
    ]
    return {m[1]: m[2] for line in lines if (m := re.fullmatch(r"`/([^`]+)` — (.+)", line))}


def viewer_commands(product: Product) -> set[str]:
    return {
        command.qualified_name
        for command in product.running.tree.walk_commands()
        if isinstance(command, app_commands.Command) and command_level(command) <= Level.VIEWER
    }


async def test_every_command_option_and_choice_is_in_french(product: Product) -> None:
    commands = synced(product)
    missing: list[str] = []
    bad: list[str] = []
    checked = 0
    for parent, items in siblings(commands):
        french_names: dict[str, str] = {}
        for item in items:
            where = f"{parent} > {item['name']}"
            name = (item.get("name_localizations") or {}).get(FR)
            description = (item.get("description_localizations") or {}).get(FR)
            if not name or not description:
                missing.append(where)
                continue
            checked += 1
            if not valid_name(name):
                bad.append(f"{where}: name {name!r}")
            if not 1 <= len(description) <= 100:
                bad.append(f"{where}: description of {len(description)} characters")
            if name in french_names:
                bad.append(f"{where}: {name!r} also names {french_names[name]!r}")
            french_names[name] = item["name"]
            # a range the English description states is the one the French one states
            ranges = re.findall(r"\b\d+-\d+\b", item["description"])
            if ranges != re.findall(r"\b\d+-\d+\b", description):
                bad.append(f"{where}: ranges {ranges} vs {description!r}")
            for choice in item.get("choices") or []:
                label = (choice.get("name_localizations") or {}).get(FR)
                if not label or not 1 <= len(label) <= 100:
                    missing.append(f"{where} choice {choice['name']!r}")
    assert not missing, f"no French name or description: {missing}"
    assert not bad, bad
    assert checked > 100, checked
    paths = french_paths(commands)
    assert paths["server start"][0] == "serveur démarrer", paths["server start"]
    assert paths["help"] == ("aide", "Les commandes que vous pouvez utiliser ici, et la version")


async def test_a_french_member_reads_help_in_french(product: Product) -> None:
    msg = await ask_help(product, product.cast.viewer, FR)
    embed = msg.embeds[0]
    assert embed["title"] == "Languard : ce que vous pouvez faire ici", embed
    assert "Votre niveau : **observateur**." in embed["description"], embed
    paths = french_paths(synced(product))
    wanted = {paths[name][0]: paths[name][1] for name in viewer_commands(product)}
    assert help_lines(msg) == wanted, text_of(msg)
    assert "serveur liste" in wanted and "server list" not in help_lines(msg)
    titles = [item["name"] for item in embed["fields"]]
    assert "/serveur — Serveurs de jeu" in titles, titles
    assert "Général" in titles, titles  # /help and /host stand outside any group


async def test_a_member_without_a_level_reads_the_french_hint(product: Product) -> None:
    msg = await ask_help(product, product.cast.nobody, FR)
    assert set(help_lines(msg)) == {"aide"}, text_of(msg)
    assert "Votre niveau : **aucun**." in text_of(msg)
    assert "Vous n'avez pas encore de niveau" in text_of(msg)
    assert "`/perms grant`" in text_of(msg)  # command names in running text stay as typed


async def test_an_american_member_still_reads_english(product: Product) -> None:
    msg = await ask_help(product, product.cast.viewer, "en-US")
    embed = msg.embeds[0]
    assert embed["title"] == "Languard: what you can do here", embed
    assert "Your level: **viewer**." in embed["description"], embed
    descriptions = {
        command.qualified_name: command.description
        for command in product.running.tree.walk_commands()
        if isinstance(command, app_commands.Command)
    }
    wanted = {name: descriptions[name] for name in viewer_commands(product)}
    assert help_lines(msg) == wanted, text_of(msg)
    assert "Votre" not in text_of(msg) and "serveur" not in text_of(msg)
