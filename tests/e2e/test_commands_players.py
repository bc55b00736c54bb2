"""/players and /bans end to end: moderation through the real bot reaches the fake Arma 3 game.

One bot and one running game server ("bravo") for the module. Players join through the
fake game's test-only RCon command `fake.join`, exactly as BattlEye would announce them;
what the game ends up believing is read back with `fake.state`, and what was said in game
from `chat.log` in the server's folder. Each test uses its own players.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.product import Product, open_product, text_of, until

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "bravo"


def guid(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()  # 32 hex characters, like a BattlEye GUID


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("players")) as opened:
        await opened.create_server(SERVER, start=True)
        yield opened


async def slot_of(product: Product, name: str) -> str:
    """The autocomplete value a moderator would pick for `name`."""
    found = await product.choices(
        "players kick", {"server": SERVER, "player": name}, "player", user=product.cast.moderator
    )
    assert len(found) == 1, found
    return str(found[0]["value"])


async def game_players(product: Product) -> list[str]:
    return [p["name"] for p in (await product.game_state(SERVER))["players"]]


async def game_bans(product: Product) -> dict[str, dict[str, object]]:
    return {b["target"]: b for b in (await product.game_state(SERVER))["bans"]}


async def test_list_and_player_autocomplete(product: Product) -> None:
    empty = await product.reply("players list", {"server": SERVER}, user=product.cast.viewer)
    assert "Nobody is online." in text_of(empty)

    for n in range(30):
        await product.join(SERVER, f"Crowd{n:02d}", guid(f"crowd{n}"), f"203.0.113.{n + 1}")
    await product.join(SERVER, "*Evil*_@everyone", guid("evil"), "203.0.113.99")

    handle = await product.run("players list", {"server": SERVER}, user=product.cast.viewer)
    listed = await handle.message()
    text = text_of(listed)
    assert "bravo: 31 online" in text and "**Crowd00**" in text and "**Crowd24**" in text
    assert "31 players · page 1 of 2" in text
    await (await product.press(handle, "Next")).response()
    listed = await handle.message(until=lambda m: "page 2 of 2" in text_of(m))
    text = text_of(listed)
    assert "**Crowd29**" in text
    assert "\\*Evil\\*\\_@\u200beveryone" in text  # escaped: no markdown, no ping
    assert not listed.pinged_everyone

    options = {"server": SERVER, "player": ""}
    every = await product.choices("players kick", options, "player", user=product.cast.moderator)
    assert len(every) == 25
    options["player"] = "crowd1"
    some = await product.choices("players ban", options, "player", user=product.cast.moderator)
    assert sorted(c["name"].split(" ", 1)[1] for c in some) == [f"Crowd1{n}" for n in range(10)]
    assert all(c["value"].isdigit() for c in some)  # the BattlEye slot, not the name


async def test_kick_reaches_the_game_with_a_one_line_reason(product: Product) -> None:
    await product.join(SERVER, "Kicky", guid("kicky"), "198.51.100.10")
    slot = await slot_of(product, "Kicky")
    reason = "spawn camping\n@everyone look\r\nhere"
    msg = await product.reply(
        "players kick",
        {"server": SERVER, "player": slot, "reason": reason},
        user=product.cast.moderator,
    )
    assert "**Kicky** left bravo." in text_of(msg) and not msg.ephemeral
    assert "Kicky" not in await game_players(product)
    assert (await product.game_state(SERVER))["rpt"] is None, "Linux: the log is stdout"
    console = product.server_folder(SERVER) / "console.log"
    line = "Kicky kicked off by BattlEye: Admin Kick (spawn camping @everyone look here)"
    assert line in await asyncio.to_thread(console.read_text, encoding="utf-8")


async def test_kick_of_someone_offline_is_a_private_error(product: Product) -> None:
    error = await product.error(
        "players kick", {"server": SERVER, "player": "Ghost"}, user=product.cast.moderator
    )
    assert "no player 'Ghost' on bravo" in error


async def test_temporary_ban_reaches_the_game(product: Product) -> None:
    await product.join(SERVER, "Griefer", guid("griefer"), "198.51.100.11")
    slot = await slot_of(product, "Griefer")
    msg = await product.reply(
        "players ban",
        {"server": SERVER, "player": slot, "duration": "1d", "reason": "tk\n@everyone\n@here"},
        user=product.cast.moderator,
    )
    text = text_of(msg)
    assert "Banned" in text and f"`{guid('griefer')}` until" in text
    assert "tk @\u200beveryone @\u200bhere" in text and not msg.pinged_everyone
    bans = await game_bans(product)
    assert bans[guid("griefer")]["reason"] == "tk @everyone @here"
    assert int(str(bans[guid("griefer")]["expires"])) > 0
    assert "Griefer" not in await game_players(product)
    # a banned player who comes back is kicked by the game at once
    await product.game(SERVER, f"fake.join Griefer {guid('griefer')} 198.51.100.11")
    assert "Griefer" not in await game_players(product)


async def test_permanent_ban_is_confirmed_by_the_invoker_only(product: Product) -> None:
    cast = product.cast
    await product.join(SERVER, "Cheater", guid("cheater"), "198.51.100.12")
    slot = await slot_of(product, "Cheater")
    handle = await product.run(
        "players ban",
        {"server": SERVER, "player": slot, "duration": "perm", "reason": "aimbot"},
        user=cast.moderator,
    )
    question = await handle.message()
    assert question.ephemeral and "**permanently**" in question.content

    other = await product.press_as_other(handle, "Ban permanently", cast.operator)
    assert "Only the person who ran the command" in (await other.message()).content
    assert guid("cheater") not in await game_bans(product)

    await product.press(handle, "Ban permanently")
    done = await handle.message(until=lambda m: bool(m.embeds))
    assert "permanently" in text_of(done)
    bans = await game_bans(product)
    assert bans[guid("cheater")]["expires"] == -1
    assert "Cheater" not in await game_players(product)


async def test_say_reaches_the_game_chat(product: Product) -> None:
    msg = await product.reply(
        "players say",
        {"server": SERVER, "message": "Restart in 5 minutes, **save** your kit @everyone"},
        user=product.cast.moderator,
    )
    assert "Said in game" in text_of(msg) and not msg.pinged_everyone
    chat = product.server_folder(SERVER) / "chat.log"
    line = "Global\tRestart in 5 minutes, **save** your kit @everyone\n"
    await until(lambda: chat.exists() and line in chat.read_text(encoding="utf-8"), 5, "chat")

    refused = await product.error(
        "players say", {"server": SERVER, "message": "hi"}, user=product.cast.viewer
    )
    assert "You need the **moderator** level" in refused


async def test_history_by_name_and_by_ip(product: Product) -> None:
    await product.join(SERVER, "Veteran", guid("veteran"), "192.0.2.77")
    by_name = await product.reply(
        "players history", {"query": "veter"}, user=product.cast.moderator
    )
    assert by_name.ephemeral
    assert "**Veteran** (arma3)" in text_of(by_name) and "`192.0.2.77`" in text_of(by_name)
    by_ip = await product.reply(
        "players history", {"query": "192.0.2.77"}, user=product.cast.moderator
    )
    assert "**Veteran**" in text_of(by_ip)
    nobody = await product.reply("players history", {"query": "zzz"}, user=product.cast.moderator)
    assert "No player matches that." in text_of(nobody)


async def test_bans_add_list_autocomplete_remove(product: Product) -> None:
    cast = product.cast
    target = guid("outsider")
    added = await product.reply(
        "bans add",
        {"id": target, "duration": "12h", "reason": "alt account", "server": SERVER},
        user=cast.moderator,
    )
    assert "Ban added" in text_of(added) and target in text_of(added)
    assert target in await game_bans(product)

    handle = await product.run(
        "bans add", {"id": "192.0.2.200", "duration": "perm"}, user=cast.moderator
    )
    await product.press(handle, "Ban permanently")
    await handle.message(until=lambda m: bool(m.embeds))
    bans = await game_bans(product)
    assert bans["192.0.2.200"]["expires"] == -1  # an all-servers ban reaches bravo too

    listed = await product.reply("bans list", {"server": SERVER}, user=cast.moderator)
    assert listed.ephemeral and target in text_of(listed) and "192.0.2.200" in text_of(listed)

    found = await product.choices("bans remove", {"ban": "192.0.2"}, "ban", user=cast.moderator)
    assert len(found) == 1 and "192.0.2.200" in found[0]["name"]
    every = await product.choices("bans remove", {"ban": ""}, "ban", user=cast.moderator)
    assert 4 <= len(every) <= 25

    removed = await product.reply("bans remove", {"ban": found[0]["value"]}, user=cast.moderator)
    assert "Ban lifted" in text_of(removed)
    assert "192.0.2.200" not in await game_bans(product)
    assert target in await game_bans(product)

    again = await product.error("bans remove", {"ban": found[0]["value"]}, user=cast.moderator)
    assert "is already removed" in again


async def test_a_ban_made_with_another_tool_is_listed_as_found_in_game(product: Product) -> None:
    target = guid("by-hand")
    # another admin's tool bans the GUID; the player is kicked when joining (a ban made in
    # game), and the bot imports it instead of removing it
    await product.game(SERVER, f"addBan {target} 0 made by hand")
    assert await product.game(SERVER, f"fake.join Handy {target} 203.0.113.77") == "banned"
    bans = product.running.services.bans

    async def imported() -> bool:
        return any(b.value == target for b in await bans.list(SERVER))

    async with asyncio.timeout(15):
        while not await imported():
            await asyncio.sleep(0.05)
    ours = guid("by-the-bot")
    added = await product.reply(
        "bans add", {"id": ours, "duration": "1d", "server": SERVER}, user=product.cast.moderator
    )
    assert "Ban added" in text_of(added)
    listed = await product.reply("bans list", {"server": SERVER}, user=product.cast.moderator)
    lines = text_of(listed).splitlines()
    line = next(line for line in lines if target in line)
    assert "found in game" in line and "made by hand" in line
    assert "made by Languard" in next(line for line in lines if ours in line)
    assert target in await game_bans(product), "kept in the game"


async def test_bans_hostile_input_is_refused_privately(product: Product) -> None:
    moderator = product.cast.moderator
    bad_id = await product.error(
        "bans add", {"id": "../../etc/passwd", "duration": "1d"}, user=moderator
    )
    assert "BattlEye GUID (32 hex characters)" in bad_id
    bad_duration = await product.error(
        "bans add", {"id": guid("x"), "duration": "a while"}, user=moderator
    )
    assert "write a duration like `30s`, `30m`, `12h`, `7d`, `perm`" in bad_duration
    for hostile in ("9" * 5000, "²", "#1; DROP TABLE bans"):
        bad_ban = await product.error("bans remove", {"ban": hostile}, user=moderator)
        assert "pick a ban from the list" in bad_ban
    missing = await product.error("bans remove", {"ban": "#424242"}, user=moderator)
    assert "there is no ban #424242" in missing
    refused = await product.error("bans list", user=product.cast.viewer)
    assert "You need the **moderator** level" in refused


async def test_moderation_is_audited(product: Product) -> None:
    audit = await product.audit_text(limit=50)
    for action in ("players.kick", "players.ban", "players.say", "bans.add", "bans.remove"):
        assert f"`{action}`" in audit, action
    assert "**mona**" in audit
    assert product.server(SERVER).state.value == "running"
