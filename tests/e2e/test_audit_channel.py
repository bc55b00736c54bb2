"""The audit channel end to end: `/audit-channel` binds a channel, and every audited action then
appears there (who, what, server, result), secrets masked and text escaped; the real bot on
the fake Discord, LANGUARD_CHAT_FROM_DISCORD left off (so no privileged intent is asked for).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.fake_discord import FakeChannel, FakeMessage
from tests.e2e.product import Product, open_product, text_of, until

pytestmark = pytest.mark.asyncio(loop_scope="module")

GUILD_MESSAGES = 1 << 9
MESSAGE_CONTENT = 1 << 15
WAIT = 15.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("audit-channel")) as opened:
        yield opened


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def channel(product: Product) -> FakeChannel:
    created = product.fake.add_channel("audit")
    await product.fake.resync_guild()
    return created


def posted(product: Product, channel: FakeChannel) -> str:
    return "\n".join(m.content for m in product.fake.messages(channel))


async def line_with(product: Product, channel: FakeChannel, *needles: str) -> FakeMessage:
    return await product.fake.wait_for_message(
        channel, lambda m: all(n in m.content for n in needles), timeout=WAIT
    )


async def test_no_privileged_intent_when_chat_from_discord_is_off(product: Product) -> None:
    assert product.running.chat_in is None
    sessions = product.fake.gateway.live_sessions()
    assert sessions and not any(s.intents & (MESSAGE_CONTENT | GUILD_MESSAGES) for s in sessions)


async def test_audited_actions_appear_in_the_audit_channel(
    product: Product, channel: FakeChannel
) -> None:
    cast = product.cast
    refused = await product.error("audit-channel", {"channel": channel}, user=cast.operator)
    assert "admin" in refused
    none = await product.reply("audit-channel", user=cast.admin)
    assert none.ephemeral and "No audit channel" in text_of(none)

    reply = await product.reply("audit-channel", {"channel": channel}, user=cast.admin)
    assert reply.ephemeral and channel.mention in text_of(reply), text_of(reply)
    bound = await line_with(product, channel, "ada", "audit.channel")  # its own change too
    assert bound.author.bot

    await product.create_server("delta")
    await line_with(product, channel, "server.create", "delta")
    await product.reply(
        "server set", {"server": "delta", "key": "rcon_password", "value": "hunter2secret"}
    )
    entry = await line_with(product, channel, "server.set", "**delta**", "rcon\\_password")
    assert "hunter2secret" not in posted(product, channel)
    assert "••••••" in entry.content and "✅" in entry.content

    # a refusal is audited, so it shows too (⛔)
    await product.error("server delete", {"server": "delta"}, user=cast.viewer)
    await line_with(product, channel, "⛔", "denied:server delete", "vic")

    shown = await product.reply("audit-channel", user=cast.admin)
    assert channel.mention in text_of(shown)


async def test_names_cannot_ping_or_format(product: Product, channel: FakeChannel) -> None:
    fake = product.fake
    evil = fake.add_user("@everyone_**x**", roles=[product.cast.roles["admin"]])
    await fake.resync_guild()
    await product.reply("audit-channel", {"channel": channel}, user=evil)  # unchanged: audited
    entry = await line_with(product, channel, "audit.channel", "unchanged", "everyone")
    assert not entry.pinged_everyone and not entry.pinged_user_ids and not entry.pinged_role_ids
    assert "@everyone" not in entry.content and "**x**" not in entry.content


async def test_off_stops_the_feed(product: Product, channel: FakeChannel) -> None:
    reply = await product.reply("audit-channel", {"off": True}, user=product.cast.admin)
    assert "no longer" in text_of(reply)
    await line_with(product, channel, "audit.channel", "channel\\_id=off")
    count = len(product.fake.messages(channel))
    await product.reply("perms grant", {"role": product.cast.roles["viewer"], "level": "viewer"})
    rows = await product.running.services.audit.recent(5)
    assert rows[0].action.startswith("perms")
    bot = product.running
    await until(lambda: bot.audit_feed.idle and bot.channel_hub.idle, WAIT, "an idle feed")
    assert len(product.fake.messages(channel)) == count
