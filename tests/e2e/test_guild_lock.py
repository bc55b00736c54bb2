"""One community per bot: Languard serves only the guilds in LANGUARD_GUILD_ID.

The first tests run a light bot (the fake game profile, no Arma) per test, to see what the
operator sees: nothing synced and nothing served with no guild configured, a configured
guild the bot is not in reported with the invite link, a forced resync. The rest share one
product (the real bot serving the fake's guild) and a second guild whose owner and whose
Administrator try the commands Languard's global registration of an older version would
still show them (a hostile client can forge them anyway): every one is refused with one
ephemeral line, autocomplete gives nothing, a button from there does nothing, and the audit
log has one row per member and guild a minute, however much they hammer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest
import pytest_asyncio

from bot.checks import AuditThrottle
from bot.client import LanguardBot
from bot.invite import PERMISSIONS, invite_url
from core.config import Settings
from data.repositories.grants import BotStateRepository
from tests.e2e.conftest import StartBot
from tests.e2e.fake_discord import (
    FakeDiscord,
    FakeGuild,
    FakeMember,
    FakeUser,
    InteractionHandle,
)
from tests.e2e.fake_discord.dispatch import interaction_payload
from tests.e2e.fake_discord.driver import MESSAGE_COMPONENT
from tests.e2e.product import REPLY_TIMEOUT, Product, button_id, open_product, text_of
from tests.fakes.fake_profile import FakeProfile

SERVER = "lock-alpha"
FOREIGN = "serves another community"
VIEW_SEND_EMBED_ATTACH_HISTORY = 1024 + 2048 + 16384 + 32768 + 65536


def light_bot(fake: FakeDiscord, data_dir: Path, guild_ids: tuple[int, ...]) -> LanguardBot:
    settings = Settings(discord_token=fake.token, data_dir=data_dir, guild_ids=guild_ids)
    return LanguardBot(
        settings,
        cogs=("cogs.servers", "cogs.host"),
        profiles=[FakeProfile()],
        guild_ready_timeout=0.05,
    )


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.client"]


async def denials(bot: LanguardBot, user_id: int) -> list[dict[str, Any]]:
    entries = await bot.services.audit.recent(200)
    return [e.arguments for e in entries if e.action == "denied:guild" and e.actor_id == user_id]


async def audited(bot: LanguardBot, user_id: int, count: int) -> list[dict[str, Any]]:
    """Wait until the member has `count` `denied:guild` rows."""
    deadline = time.monotonic() + REPLY_TIMEOUT
    while len(found := await denials(bot, user_id)) < count:
        assert time.monotonic() < deadline, f"{len(found)} denied:guild rows, wanted {count}"
        await asyncio.sleep(0.02)
    return found


# ----- a light bot per test ------------------------------------------------------------------


async def test_invite_link_asks_for_the_commands_scope_and_five_permissions() -> None:
    assert PERMISSIONS.value == VIEW_SEND_EMBED_ATTACH_HISTORY
    assert invite_url(1234) == (
        "https://discord.com/oauth2/authorize?client_id=1234"
        f"&scope=bot+applications.commands&permissions={VIEW_SEND_EMBED_ATTACH_HISTORY}"
    )


def test_the_refusal_audit_is_throttled_and_bounded() -> None:
    now = [0.0]
    throttle = AuditThrottle(window=60.0, capacity=3, clock=lambda: now[0])
    assert throttle.allow(("guild", 1, 9)) and not throttle.allow(("guild", 1, 9))
    assert throttle.allow(("guild", 2, 9))  # another member, or another guild, is its own key
    now[0] = 59.0
    assert not throttle.allow(("guild", 1, 9))
    now[0] = 61.0
    assert throttle.allow(("guild", 1, 9))  # a minute later: one more row
    for user in range(100, 1100):  # a thousand forged users: memory stays at the cap
        throttle.allow(("guild", user, 9))
    assert len(throttle._seen) == 3


async def test_with_no_guild_configured_nothing_is_synced_or_served(
    fake_discord: FakeDiscord,
    start_bot: StartBot,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = fake_discord
    odd = fake.add_guild("Odd\nGuild `x`")  # a name that must not forge a log line
    caplog.set_level(logging.INFO, logger="bot.client")
    bot = await start_bot(light_bot(fake, tmp_path / "var", ()), wait_ready=True)
    assert fake.sync_count() == 0
    logged = messages(caplog)
    for guild in (fake.guild, odd):
        lines = [m for m in logged if f"id {guild.id})" in m]
        assert len(lines) == 1 and f"LANGUARD_GUILD_ID={guild.id}" in lines[0], logged
        assert "\n" not in lines[0]
    assert any("'Odd\\nGuild `x`'" in m for m in logged), logged

    # commands an older version registered globally still show; using one says what to do
    await bot.tree.sync()
    handle = await fake.invoke_slash("server list", {}, user=fake.owner, guild=odd)
    msg = await handle.message(REPLY_TIMEOUT)
    assert msg.ephemeral and "must set LANGUARD_GUILD_ID" in msg.content
    assert f"`{odd.id}`" in msg.content and "Servers" not in text_of(msg)
    completion = await fake.invoke_autocomplete(
        "server status", {"server": ""}, focused="server", user=fake.owner
    )
    assert await completion.choices(REPLY_TIMEOUT) == []
    rows = await audited(bot, fake.owner.id, 2)
    assert sorted(rows, key=str) == sorted(
        [{"guild_id": str(odd.id)}, {"guild_id": str(fake.guild.id)}], key=str
    )


async def test_an_earlier_global_registration_is_removed(
    fake_discord: FakeDiscord, start_bot: StartBot, tmp_path: Path
) -> None:
    fake = fake_discord
    bot = await start_bot(light_bot(fake, tmp_path / "var", (fake.guild.id,)))
    assert (
        set(fake.commands(fake.guild)) == {"server", "rcon", "host"} and fake.sync_count(None) == 0
    )
    await bot.tree.sync()  # what an older Languard did with LANGUARD_GUILD_ID empty
    state = BotStateRepository(bot.services.db)
    await state.set(f"command_tree:global:{bot.application_id}", "an older fingerprint")
    assert set(fake.commands(None)) == {"server", "rcon", "host"}

    assert await bot.sync_commands() is False  # the guild's copy had not changed
    assert fake.commands(None) == {} and fake.sync_count(None) == 2
    await bot.sync_commands()
    assert fake.sync_count(None) == 2, "cleared once, not at every start"

    assert await bot.sync_commands(force=True) is True  # `python -m bot resync`
    assert fake.sync_count(fake.guild) == 2


async def test_a_configured_guild_without_the_bot_is_one_line_with_the_invite(
    fake_discord: FakeDiscord,
    start_bot: StartBot,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = fake_discord
    elsewhere = fake.add_guild("Not Yet", with_bot=False)
    caplog.set_level(logging.INFO, logger="bot.client")
    guilds = (elsewhere.id, fake.guild.id)
    bot = await start_bot(light_bot(fake, tmp_path / "var", guilds), wait_ready=True)
    assert fake.sync_count(fake.guild) == 1 and fake.sync_count(elsewhere) == 0
    link = invite_url(fake.world.application_id)
    assert f"client_id={fake.world.application_id}" in link
    logged = messages(caplog)
    sync_failed = [m for m in logged if "cannot sync" in m and str(elsewhere.id) in m]
    assert len(sync_failed) == 1 and link in sync_failed[0], logged
    not_in = [m for m in logged if "does not have the bot" in m]
    assert len(not_in) == 1 and str(elsewhere.id) in not_in[0] and link in not_in[0], logged
    assert not any(r.exc_info for r in caplog.records), "no traceback for a missing guild"
    assert bot.is_ready() and not bot.is_closed()


# ----- the real bot, and a second guild ------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("guild-lock")) as opened:
        await opened.create_server(SERVER)
        yield opened


class Rivals:
    def __init__(self, guild: FakeGuild, owner: FakeUser, admin: FakeMember) -> None:
        self.guild, self.owner, self.admin = guild, owner, admin


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rivals(product: Product) -> Rivals:
    """A second guild with the bot in it: its owner and an Administrator of it; and the
    commands registered globally, as an older Languard left them."""
    fake = product.fake
    owner = fake.state.add_user("rival")
    guild = fake.add_guild("Rival Community", owner=owner)
    boss = fake.add_role("Bosses", admin=True, guild=guild)
    admin = fake.add_user("boss", roles=[boss], guild=guild)
    fake.state.add_member(guild, product.cast.owner)  # the served guild's owner is there too
    await fake.resync_guild(guild)
    await product.running.tree.sync()
    return Rivals(guild, owner, admin)


async def refusal(product: Product, handle: InteractionHandle) -> str:
    msg = await handle.message(REPLY_TIMEOUT)
    assert msg.ephemeral, msg.content
    assert not handle.followups
    return msg.content


async def guild_denials(product: Product, user_id: int) -> list[dict[str, Any]]:
    """The member's `denied:guild` audit rows, once the first is written (the refusal is
    answered before it is audited), plus a moment for any (wrong) extra row to land."""
    await audited(product.running, user_id, 1)
    await asyncio.sleep(0.2)
    return await denials(product.running, user_id)


@pytest.mark.asyncio(loop_scope="module")
async def test_only_the_configured_guild_has_the_commands(product: Product) -> None:
    fake = product.fake
    assert fake.sync_count(fake.guild) == 1 and fake.sync_count(None) == 0


@pytest.mark.asyncio(loop_scope="module")
async def test_the_owner_of_another_guild_is_refused(product: Product, rivals: Rivals) -> None:
    fake = product.fake
    for name, options in (("server list", {}), ("server config", {"server": SERVER})):
        handle = await fake.invoke_slash(name, options, user=rivals.owner, guild=rivals.guild)
        text = await refusal(product, handle)
        assert FOREIGN in text and f"`{rivals.guild.id}`" in text
        assert "LANGUARD_GUILD_ID" in text and "rcon_password" not in text
    assert await guild_denials(product, rivals.owner.id) == [{"guild_id": str(rivals.guild.id)}]


@pytest.mark.asyncio(loop_scope="module")
async def test_an_administrator_of_another_guild_is_refused(
    product: Product, rivals: Rivals
) -> None:
    fake = product.fake
    for _ in range(5):  # hammering: refused every time, audited once a minute
        handle = await fake.invoke_slash(
            "server config", {"server": SERVER}, user=rivals.admin, guild=rivals.guild
        )
        assert FOREIGN in await refusal(product, handle)
    assert len(await guild_denials(product, rivals.admin.id)) == 1


@pytest.mark.asyncio(loop_scope="module")
async def test_autocomplete_from_another_guild_gives_nothing(
    product: Product, rivals: Rivals
) -> None:
    fake = product.fake
    for user in (rivals.owner, rivals.admin):
        handle = await fake.invoke_autocomplete(
            "server config", {"server": ""}, focused="server", user=user, guild=rivals.guild
        )
        assert await handle.choices(REPLY_TIMEOUT) == []
    mine = await product.choices("server config", {"server": ""}, "server")
    assert [c["value"] for c in mine] == [SERVER]  # the served guild still gets them


@pytest.mark.asyncio(loop_scope="module")
async def test_a_direct_message_is_refused(product: Product, rivals: Rivals) -> None:
    fake = product.fake
    handle = await fake.invoke_slash("server list", {}, user=product.cast.owner, dm=True)
    text = await refusal(product, handle)
    assert "not in direct messages" in text and "Servers" not in text


@pytest.mark.asyncio(loop_scope="module")
async def test_a_button_pressed_from_another_guild_does_nothing(
    product: Product, rivals: Rivals
) -> None:
    """A forged component (the confirmation lives in the served guild) carrying the other
    guild's id, pressed by the very member who asked: the View's guild check refuses it."""
    fake = product.fake
    asked = await product.run("server delete", {"server": SERVER})
    question = await asked.message(REPLY_TIMEOUT)
    custom_id = button_id(question, "Delete")
    channel = rivals.guild.text_channels()[0]
    data = {"custom_id": custom_id, "component_type": 2}

    def build(iid: int, token: str) -> dict[str, Any]:
        return interaction_payload(
            fake.state,
            iid=iid,
            token=token,
            kind=MESSAGE_COMPONENT,
            user=product.cast.owner,
            guild=rivals.guild,
            channel=channel,
            data=data,
            message=question,
        )

    inter = fake.state.new_interaction(
        MESSAGE_COMPONENT,
        product.cast.owner,
        channel,
        rivals.guild.id,
        build,
        message_id=question.id,
    )
    await fake.dispatch("INTERACTION_CREATE", inter.payload)
    forged = InteractionHandle(fake.state, inter)
    assert FOREIGN in (await forged.message(REPLY_TIMEOUT)).content
    assert product.server(SERVER).name == SERVER  # not deleted
    cancelled = await product.press(asked, "Cancel")
    await cancelled.response(REPLY_TIMEOUT)
    assert product.server(SERVER).name == SERVER


@pytest.mark.asyncio(loop_scope="module")
async def test_the_served_guild_still_works(product: Product, rivals: Rivals) -> None:
    listed = await product.reply("server list", user=product.cast.viewer)
    assert SERVER in text_of(listed)
    audit = await product.audit_text()
    assert "denied:guild" in audit
    assert isinstance(product.running.get_guild(rivals.guild.id), discord.Guild)
