"""Autocomplete is a command: it shows nothing to a member below the command's level.

discord.py runs a command's checks when the command is invoked, not when one of its options
autocompletes, so before this rule a member with no level read ban targets (GUIDs, IPs,
reasons) and who is online through autocomplete. The test walks the bot's own command tree:
every autocompleted option of every command is asked by one person per level (none, viewer,
moderator, operator, admin, the guild owner) and by a member granted operator on one server
only. Below the command's level: no choices; at or above: choices; the server-scoped member
sees only their server. A new autocomplete is covered the day it is added (an option name the
test has no data for fails the test, saying which).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from discord import app_commands

from bot.checks import LEVEL_KEY, command_level
from bot.client import COGS
from core.permissions import Level
from data.repositories.mods import ModRepository
from tests.e2e.fake_discord import FakeMember, FakeUser
from tests.e2e.product import Product, open_product, text_of
from tests.fakes.pbo_factory import mission_pbo

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALPHA = "ac-alpha"
BETA = "ac-beta"
TYPED = {
    "server": "",
    "player": "",
    "mission": "",
    "ban": "",
    "entry": "",
    "key": "",
    "game": "",
    "host": "",
    "backup": "",
    "mod": "",
    "set": "",
}
"""What is typed into each autocompleted option: nothing, so every choice may show."""


@dataclass(frozen=True)
class Person:
    name: str
    who: FakeUser | FakeMember
    levels: dict[str | None, Level]
    """Their level globally (None) and per server name."""

    def level(self, server: str | None) -> Level:
        return max(self.levels.get(None, Level.NONE), self.levels.get(server, Level.NONE))


@dataclass(frozen=True)
class Completion:
    command: app_commands.Command[object, ..., object]
    option: str

    @property
    def name(self) -> str:
        return self.command.qualified_name

    @property
    def names_a_server(self) -> bool:
        return any(p.name == "server" for p in self.command.parameters)

    @property
    def level(self) -> Level:
        return command_level(self.command)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    """Something behind every autocomplete: a player online, a mission, a ban, a schedule,
    a backup."""
    async with open_product(tmp_path_factory.mktemp("autocomplete")) as opened:
        await opened.stop_bot()  # every cog, /status too: all autocompletes are covered
        await opened.start_bot(COGS)
        await opened.create_server(ALPHA, start=True)
        await opened.create_server(BETA)
        guid = hashlib.md5(b"zed").hexdigest()
        await opened.join(ALPHA, "Zed", guid, "203.0.113.5")
        pbo = opened.fake.add_attachment("co10_ac.altis.pbo", mission_pbo("co10_ac"))
        handle = await opened.run("missions upload", {"server": ALPHA, "file": pbo})
        done = await handle.message(until=lambda m: bool(m.embeds))
        assert "Mission stored" in text_of(done), text_of(done)
        ban = await opened.reply("bans add", {"id": "198.51.100.7", "duration": "7d"})
        assert "Ban added" in text_of(ban), text_of(ban)
        every = {"server": ALPHA, "every": "30m", "message": "hello"}
        assert "scheduled" in text_of(await opened.reply("schedule message", every))
        handle = await opened.run("backup now", {"server": ALPHA})
        done = await handle.message(60, until=lambda m: bool(m.embeds))
        assert "Backup of ac-alpha taken" in text_of(done), text_of(done)
        # a mod in the library (as a download would leave it; no SteamCMD here)
        await ModRepository(opened.running.services.db).add(450814997, "CBA_A3", "@cba_a3")
        yield opened


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def people(product: Product) -> list[Person]:
    cast = product.cast
    scoped = product.fake.add_role("Alpha Ops")
    sam = product.fake.add_user("sam", roles=[scoped])
    await product.fake.resync_guild()
    granted = await product.reply(
        "perms grant", {"role": scoped, "level": "operator", "server": ALPHA}
    )
    assert "now **operator**" in text_of(granted), text_of(granted)
    return [
        Person("nobody", cast.nobody, {}),
        Person("viewer", cast.viewer, {None: Level.VIEWER}),
        Person("moderator", cast.moderator, {None: Level.MODERATOR}),
        Person("operator", cast.operator, {None: Level.OPERATOR}),
        Person("admin", cast.admin, {None: Level.ADMIN}),
        Person("owner", cast.owner, {None: Level.ADMIN}),
        Person("alpha operator", sam, {ALPHA: Level.OPERATOR}),
    ]


def completions(product: Product) -> Iterator[Completion]:
    """Every (command, option) with an autocomplete, read from the bot's tree."""
    for command in product.running.tree.walk_commands():
        if isinstance(command, app_commands.Command):
            for param in command.parameters:
                if param.autocomplete:
                    yield Completion(command, param.name)


async def test_every_autocomplete_has_data_and_a_recorded_level(product: Product) -> None:
    found = list(completions(product))
    assert len(found) > 20, [c.name for c in found]
    unknown = sorted({c.option for c in found} - set(TYPED))
    assert not unknown, f"give the test something to type into {unknown}"
    for completion in found:
        callback = completion.command.callback
        recorded = completion.command.extras.get(LEVEL_KEY) or getattr(
            callback, "__languard_level__", None
        )
        assert recorded is not None, f"/{completion.name} has no @require level"
    named = {(c.name, c.option) for c in found}
    assert {("bans remove", "ban"), ("players kick", "player"), ("status post", "server")} <= (
        named
    )


async def ask(
    product: Product, completion: Completion, person: Person, server: str | None
) -> list[str]:
    options = {completion.option: TYPED[completion.option]}
    if completion.option != "server" and server is not None:
        options["server"] = server
    found = await product.choices(completion.name, options, completion.option, user=person.who)
    return [str(c["value"]) for c in found]


async def test_below_the_level_nothing_at_or_above_something(
    product: Product, people: list[Person]
) -> None:
    failures = []
    for completion in completions(product):
        needed = completion.level
        for person in people:
            if completion.option == "server":
                got = set(await ask(product, completion, person, None))
                floor = max(Level.VIEWER, needed)
                wanted = {s for s in (ALPHA, BETA) if person.level(s) >= floor}
                ok = got == wanted
            else:
                where = ALPHA if completion.names_a_server else None
                got = set(await ask(product, completion, person, where))
                ok = bool(got) == (person.level(where) >= needed)
                wanted = {"something"} if person.level(where) >= needed else set()
            if not ok:
                failures.append(
                    f"/{completion.name} {completion.option} ({needed.label}) as "
                    f"{person.name}: got {sorted(got)}, wanted {sorted(wanted)}"
                )
    assert not failures, "\n".join(failures)


async def test_the_scoped_member_sees_nothing_of_another_server(
    product: Product, people: list[Person]
) -> None:
    sam = next(p for p in people if p.name == "alpha operator")
    for completion in completions(product):
        if completion.option != "server" and completion.names_a_server:
            assert await ask(product, completion, sam, BETA) == [], completion.name
    admin = next(p for p in people if p.name == "admin")
    keys = await ask(
        product, next(c for c in completions(product) if c.option == "key"), admin, BETA
    )
    assert keys, "the admin still gets the setting keys of the other server"


async def test_an_unknown_server_gives_nothing(product: Product, people: list[Person]) -> None:
    owner = next(p for p in people if p.name == "owner")
    for completion in completions(product):
        if completion.option != "server" and completion.names_a_server:
            assert await ask(product, completion, owner, "no-such-server") == [], completion.name
