"""/perms, /audit, /host, /logs, /schedule and /rcon end to end, plus the error policy and the
command-tree sync, through the real bot on the fake Discord with one running game ("delta").

The last test stops the bot and starts it again on the same data folder: it must not sync
the unchanged command tree again, and it must re-adopt the game server that kept running.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.client import COGS
from core.services.audit import MASK
from tests.e2e.fake_discord import FakeMember, FakeRole
from tests.e2e.product import BOT_COGS, Product, open_product, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "delta"
OTHER = "echo"  # created, never started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("admin")) as opened:
        await opened.create_server(SERVER, start=True)
        await opened.create_server(OTHER)
        yield opened


async def late_member(
    product: Product, role_name: str, user_name: str
) -> tuple[FakeRole, FakeMember]:
    """A role and a member added while the bot runs (it learns of them from GUILD_CREATE)."""
    role = product.fake.add_role(role_name)
    member = product.fake.add_user(user_name, roles=[role])
    await product.fake.resync_guild()
    return role, member


# -- /perms -------------------------------------------------------------------------------------


async def test_perms_list_shows_grants_without_pinging(product: Product) -> None:
    msg = await product.reply("perms list", user=product.cast.viewer)
    text = text_of(msg)
    for level, role in product.cast.roles.items():
        assert f"<@&{role.id}> — **{level}**" in text
    assert "Guild owner and members with Administrator: **admin** everywhere." in text
    assert not msg.pinged_role_ids and not msg.pinged_everyone


async def test_per_server_grant_and_revoke(product: Product) -> None:
    role, dora = await late_member(product, "DeltaOps", "dora")
    refused = await product.error("logs tail", {"server": SERVER}, user=dora)
    assert "You need the **operator** level for this (you have none)" in refused

    granted = await product.reply(
        "perms grant",
        {"role": role, "level": "operator", "server": SERVER},
        user=product.cast.admin,
    )
    assert f"<@&{role.id}> is now **operator** on **delta**." in text_of(granted)
    assert not granted.pinged_role_ids

    allowed = await product.reply("logs tail", {"server": SERVER, "lines": 3}, user=dora)
    assert "delta: last 3 lines" in allowed.content
    elsewhere = await product.error("logs tail", {"server": OTHER}, user=dora)
    assert "(you have none)" in elsewhere  # the grant is for delta only

    listed = await product.reply("perms list")
    assert f"<@&{role.id}> — **operator** on delta" in text_of(listed)

    revoked = await product.reply("perms revoke", {"role": role, "server": SERVER})
    assert "no longer has a level there" in text_of(revoked)
    again = await product.reply("perms revoke", {"role": role, "server": SERVER})
    assert again.ephemeral and "had no grant on delta" in again.content
    assert "(you have none)" in await product.error("logs tail", {"server": SERVER}, user=dora)

    not_admin = await product.error(
        "perms grant", {"role": role, "level": "admin"}, user=product.cast.operator
    )
    assert "You need the **admin** level" in not_admin


async def test_grant_to_everyone_opens_read_only_commands(product: Product) -> None:
    everyone = product.fake.guild.roles[product.fake.guild.id]
    nobody = product.cast.nobody
    assert "(you have none)" in await product.error("host", user=nobody)
    granted = await product.reply("perms grant", {"role": everyone, "level": "viewer"})
    assert "is now **viewer** on every server" in text_of(granted)
    assert not granted.pinged_everyone  # the reply names @everyone without pinging it
    host = await product.reply("host", user=nobody)
    assert "CPU" in text_of(host)
    assert "operator" in await product.error("logs tail", {"server": SERVER}, user=nobody)
    await product.reply("perms revoke", {"role": everyone})
    assert "(you have none)" in await product.error("host", user=nobody)


# -- /host and the error policy ------------------------------------------------------------------


async def test_host_shows_the_machine(product: Product) -> None:
    msg = await product.reply("host", user=product.cast.viewer)
    fields = {f["name"]: f["value"] for f in msg.embeds[0]["fields"]}
    assert set(fields) >= {"CPU", "RAM", "Disk (data)", "Addresses", "Host uptime", "Bot uptime"}
    assert fields["Servers"] == "1 running / 2"
    assert not msg.ephemeral


async def test_unexpected_exception_gets_a_reference_and_no_traceback(
    product: Product, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = product.running.services.host
    before = await host.errors_recorded()

    async def broken() -> None:
        raise RuntimeError("disk exploded at /srv/secret/path")

    monkeypatch.setattr(host, "info", broken)
    text = await product.error("host", user=product.cast.viewer)
    assert "Something went wrong on our side (reference `" in text
    assert "exploded" not in text and "/srv/secret" not in text and "Traceback" not in text
    monkeypatch.undo()

    assert await host.errors_recorded() == before + 1
    shown = await product.reply("host", user=product.cast.viewer)
    errors = next(f["value"] for f in shown.embeds[0]["fields"] if f["name"] == "Errors (24 h)")
    assert int(errors) == before + 1


# -- /rcon and /logs ----------------------------------------------------------------------------


async def test_rcon_is_admin_only_one_line_and_audited(product: Product) -> None:
    reply = await product.reply("rcon", {"server": SERVER, "command": "players"})
    assert reply.ephemeral and "Players on server:" in reply.content
    assert "(0 players in total)" in reply.content

    secret = await product.reply("rcon", {"server": SERVER, "command": "RConPassword hunter2"})
    assert secret.ephemeral and "Unknown command" in secret.content

    two = await product.error("rcon", {"server": SERVER, "command": "players\n#shutdown"})
    assert "one command per line" in two
    assert product.server(SERVER).state.value == "running"
    stopped = await product.error("rcon", {"server": OTHER, "command": "players"})
    assert "echo has no RCon connection (is it running?)" in stopped
    refused = await product.error(
        "rcon", {"server": SERVER, "command": "players"}, user=product.cast.operator
    )
    assert "You need the **admin** level" in refused

    audit = await product.audit_text(server=SERVER)
    assert "`rcon` on delta — 7 characters of reply" not in audit  # (players is longer)
    assert audit.count("`rcon` on delta") == 2
    entries = await product.running.services.audit.recent(10, product.server(SERVER).id)
    commands = [e.arguments.get("command") for e in entries if e.action == "rcon"]
    assert commands == [f"RConPassword {MASK}", "players"]  # newest first, password masked


async def test_logs_tail_and_search(product: Product) -> None:
    operator = product.cast.operator
    tail = await product.reply("logs tail", {"server": SERVER, "lines": 5}, user=operator)
    assert tail.ephemeral and tail.content.startswith("**delta: last 5 lines**\n```")

    found = await product.reply(
        "logs search", {"server": SERVER, "text": "Dedicated host created"}, user=operator
    )
    assert "line(s) matching the search" in found.content
    assert "Dedicated host created." in found.content

    for n in range(80):  # every say is echoed into the game's log
        said = await product.reply(
            "players say",
            {"server": SERVER, "message": f"announcement number {n:03d} for everyone"},
            user=operator,
        )
        assert "Said in game" in text_of(said)
    for _ in range(100):  # the game writes its log a moment later; look as a user would
        last = await product.reply(
            "logs search", {"server": SERVER, "text": "number 079"}, user=operator
        )
        if "announcement number 079" in last.content:
            break
        await asyncio.sleep(0.1)
    big = await product.reply("logs tail", {"server": SERVER, "lines": 200}, user=operator)
    assert big.ephemeral and "lines, attached)" in big.content
    log = big.file("delta.log").data.decode()
    assert "announcement number 079" in log and "Dedicated host created." in log

    blank = await product.error("logs search", {"server": SERVER, "text": "   "}, user=operator)
    assert "give some text to search for" in blank
    refused = await product.error("logs tail", {"server": SERVER}, user=product.cast.moderator)
    assert "You need the **operator** level" in refused


# -- /schedule ----------------------------------------------------------------------------------


async def test_schedule_restart_message_list_remove(product: Product) -> None:
    operator = product.cast.operator
    restart = await product.reply(
        "schedule restart", {"server": SERVER, "at": "06:00", "warn": "10,2"}, user=operator
    )
    assert "Restart scheduled" in text_of(restart)
    message = await product.reply(
        "schedule message",
        {"server": SERVER, "every": "30m", "message": "Join our Discord!\n@everyone"},
        user=operator,
    )
    assert "Message scheduled" in text_of(message) and not message.pinged_everyone

    listed = await product.reply("schedule list", {"server": SERVER}, user=product.cast.viewer)
    text = text_of(listed)
    assert (
        "restart daily at 06:00" in text and "every 30m: Join our Discord! @\u200beveryone" in text
    )

    entries = await product.choices("schedule remove", {"entry": ""}, "entry", user=operator)
    assert len(entries) == 2
    only = await product.choices("schedule remove", {"entry": "every"}, "entry", user=operator)
    assert len(only) == 1 and "Join our Discord!" in only[0]["name"]
    assert "\n" not in only[0]["name"]

    removed = await product.reply("schedule remove", {"entry": only[0]["value"]}, user=operator)
    assert "Removed" in text_of(removed)
    left = await product.reply("schedule list", user=product.cast.viewer)
    assert "every 30m" not in text_of(left) and "restart daily at 06:00" in text_of(left)

    bad_time = await product.error(
        "schedule restart", {"server": SERVER, "at": "25:99"}, user=operator
    )
    assert "reference" not in bad_time and len(bad_time) > 10
    too_often = await product.error(
        "schedule message", {"server": SERVER, "every": "1s", "message": "spam"}, user=operator
    )
    assert "the duration must be between 1m and" in too_often
    bad_entry = await product.error("schedule remove", {"entry": "x" * 6000}, user=operator)
    assert "pick a schedule from the list" in bad_entry
    refused = await product.error(
        "schedule remove", {"entry": only[0]["value"]}, user=product.cast.viewer
    )
    assert "You need the **operator** level" in refused


# -- /audit -------------------------------------------------------------------------------------


async def test_audit_is_admin_only_filtered_and_fits_discord(product: Product) -> None:
    viewer = await product.error("audit", user=product.cast.viewer)
    assert "You need the **admin** level for this (you have viewer)" in viewer
    text = await product.audit_text(limit=3)
    assert text.count("\n✅") + text.count("\n⛔") == 3
    assert "**vic** `denied:audit` — refused: level too low" in text

    for n in range(50):
        await product.reply("server set", {"server": OTHER, "key": "motd", "value": f"m{n}" * 40})
    full = await product.reply("audit", {"limit": 50})
    assert full.ephemeral and len(full.embeds[0]["description"]) <= 4096
    assert "`server.set` on echo" in text_of(full) and "· page 1 of" in text_of(full)


# -- the command tree and a bot restart ----------------------------------------------------------


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_tree_synced_once_and_not_again_after_a_restart(product: Product) -> None:
    fake = product.fake
    assert fake.sync_count(fake.guild) == 1 and fake.sync_count(None) == 0
    assert set(fake.commands(fake.guild)) == {
        "server", "rcon", "logs", "players", "bans", "missions", "schedule", "perms", "audit",
        "host", "help", "audit-channel", "backup", "mods",
    }  # fmt: skip
    server_subs = {o["name"] for o in fake.commands(fake.guild)["server"]["options"]}
    assert server_subs == {
        "list", "status", "create", "delete", "start", "stop", "restart", "kill", "config",
        "set", "channels", "maintenance", "stats", "mods",
    }  # fmt: skip
    pid = (await product.game_state(SERVER))["pid"]

    await product.stop_bot()
    assert alive(pid)  # the game outlives the bot
    bot = await product.start_bot()
    assert not bot.synced and fake.sync_count(fake.guild) == 1

    status = await product.reply("server status", {"server": SERVER}, user=product.cast.viewer)
    assert "**running**" in text_of(status)
    assert (await product.game_state(SERVER))["pid"] == pid  # re-adopted, not restarted

    await product.stop_bot()
    changed = await product.start_bot(tuple(c for c in BOT_COGS if c != "cogs.host"))
    assert changed.synced and fake.sync_count(fake.guild) == 2
    assert "host" not in fake.commands(fake.guild)
    assert "cogs.status" in COGS  # (left out of these tests on purpose, see product.py)
