"""Two-way chat, Discord → game, end to end: the real bot with LANGUARD_CHAT_FROM_DISCORD=true on
the fake Discord, a running fake Arma 3 server, and members typing in the server's chat channel.

What the game heard is read from the fake game's `chat.log` (one `Global<TAB>text` line per
RCon `say -1`). Messages are delivered as MESSAGE_CREATE gateway events, shaped as Discord
shapes a member's message (with its `member` object and resolved mentions). Tests wait on the
bot's count of handled messages, never on time, before asserting that something did not happen.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock

import pytest
import pytest_asyncio

from bot.chat_in import ChatIn
from core.config import SettingsError, load_settings
from tests.e2e.bot_process import BotProcess, bot_env
from tests.e2e.fake_discord import FakeChannel, FakeDiscord, FakeMember, FakeMessage
from tests.e2e.fake_discord.state import FakeConfig
from tests.e2e.product import Product, open_product, text_of, until

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "charlie"
GUILD_MESSAGES = 1 << 9
MESSAGE_CONTENT = 1 << 15


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    with mock.patch.dict(os.environ, {"LANGUARD_CHAT_FROM_DISCORD": "true"}):
        async with open_product(tmp_path_factory.mktemp("chat-in")) as opened:
            await opened.create_server(SERVER, start=True)
            yield opened


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chat(product: Product) -> FakeChannel:
    channel = product.fake.add_channel("game-chat")
    await product.fake.resync_guild()
    msg = await product.reply("server channels", {"server": SERVER, "chat": channel})
    assert "Channels" in text_of(msg), text_of(msg)
    return channel


def chat_in(product: Product) -> ChatIn:
    relay = product.running.chat_in
    assert relay is not None, "LANGUARD_CHAT_FROM_DISCORD is on: the relay must run"
    return relay


def game_chat(product: Product) -> list[str]:
    path = product.server_folder(SERVER) / "chat.log"
    if not path.exists():
        return []
    return [line.split("\t", 1)[1] for line in path.read_text(encoding="utf-8").splitlines()]


async def post(
    product: Product,
    channel: FakeChannel,
    member: FakeMember,
    content: str,
    *,
    mentions: tuple[FakeMember, ...] = (),
    webhook: bool = False,
) -> FakeMessage:
    """`member` types `content` in `channel`: the message Discord stores and dispatches."""
    state = product.fake.state
    msg = state.new_message(channel, member.user)
    msg.content = content
    msg.pinged_user_ids = {m.id for m in mentions}
    if webhook:
        msg.webhook_id = state.ids.next()
    state.commit_message(msg)
    payload = msg.payload(state.user)
    if not webhook:
        payload["member"] = member.payload(with_user=False)
    await product.fake.dispatch("MESSAGE_CREATE", payload)
    return msg


async def handled(product: Product, count: int) -> None:
    relay = chat_in(product)
    await until(lambda: relay.handled >= count, 15, f"{count} handled chat messages")


async def test_the_privileged_intents_are_requested_when_on(product: Product) -> None:
    sessions = product.fake.gateway.live_sessions()
    assert sessions and all(s.intents & MESSAGE_CONTENT for s in sessions)
    assert all(s.intents & GUILD_MESSAGES for s in sessions)


async def test_a_moderator_is_heard_a_viewer_a_bot_and_a_webhook_are_not(
    product: Product, chat: FakeChannel
) -> None:
    cast = product.cast
    before = chat_in(product).handled
    await post(product, chat, cast.viewer, "viewer speaking")
    await post(product, chat, cast.nobody, "nobody speaking")
    bot_member = product.fake.add_user("otherbot")
    bot_member.user.bot = True
    await post(product, chat, bot_member, "a bot speaking")
    await post(product, chat, cast.moderator, "webhook speaking", webhook=True)
    await post(product, chat, cast.moderator, "moderator speaking")
    await until(
        lambda: any(line.endswith(": moderator speaking") for line in game_chat(product)),
        15,
        "the moderator's line in game",
    )
    # The game echoes the RCon say as chat, the bot relays it into this channel, the relay
    # comes back as the bot's own message... and stops there: no echo loop.
    echo = await product.fake.wait_for_message(
        chat, lambda m: m.author.bot and "moderator speaking" in m.content, timeout=15
    )
    assert "RCon admin" in echo.content, echo.content
    await handled(product, before + 6)  # the five posts and the echo
    heard = [line for line in game_chat(product) if "speaking" in line]
    assert heard == ["mona: moderator speaking"]


async def test_newlines_mentions_and_markup_arrive_as_one_clean_line(
    product: Product, chat: FakeChannel
) -> None:
    cast = product.cast
    await post(
        product,
        chat,
        cast.moderator,
        f"first line\nsecond {cast.viewer.mention}\x07 @everyone\r\n**third** " + "x" * 600,
        mentions=(cast.viewer,),
    )
    line = await until(
        lambda: next((x for x in game_chat(product) if "first line" in x), None),
        15,
        "the multi-line message in game",
    )
    assert line.startswith("mona: first line second @vic @everyone **third** xxx")
    assert "<@" not in line and "\x07" not in line
    assert len(line) <= 400 and line.endswith("…")
    assert len(product.server_folder(SERVER).joinpath("chat.log").read_text().splitlines()) == len(
        game_chat(product)
    )


async def test_the_rate_limit_holds_and_is_shown_once(product: Product, chat: FakeChannel) -> None:
    cast = product.cast
    before = chat_in(product).handled
    sent = [await post(product, chat, cast.operator, f"burst {n}") for n in range(8)]
    await handled(product, before + 8)
    await until(
        lambda: len([x for x in game_chat(product) if x.startswith("otto: burst")]) >= 5,
        15,
        "five burst lines in game",
    )
    burst = [x for x in game_chat(product) if x.startswith("otto: burst")]
    assert len(burst) == len(set(burst)) == 5, burst
    await until(lambda: any(m.reactions for m in sent), 10, "the ⏳ reaction")
    reacted = [m for m in sent if m.reactions]
    assert len(reacted) == 1 and reacted[0].reactions == ["⏳"]
    assert f"otto: {reacted[0].content}" not in burst

    # audited, but not one row per message
    rows = [
        e
        for e in await product.running.services.audit.recent(100)
        if e.action == "chat.from_discord" and e.actor_id == cast.operator.id
    ]
    assert len(rows) == 1 and rows[0].arguments["message"] in burst


async def test_a_refused_privileged_intent_is_one_line_saying_what_to_enable(
    tmp_path: Path,
) -> None:
    fake = FakeDiscord(config=FakeConfig(privileged_intents=0))
    await fake.start()
    env = bot_env(
        tmp_path / "var",
        fake.port,
        DISCORD_TOKEN=fake.token,
        LANGUARD_GUILD_ID=str(fake.guild.id),
        LANGUARD_CHAT_FROM_DISCORD="true",
    )
    bot = await BotProcess.start(tmp_path, env)
    try:
        code = await bot.wait(60)
    finally:
        await bot.stop()
        await fake.close()
    output = bot.output()
    assert code == 2, output
    assert "Message Content Intent" in output and "Bot" in output, output
    assert "Traceback" not in output, output


async def test_the_setting_is_validated_with_its_fix() -> None:
    with (
        mock.patch.dict(os.environ, {"LANGUARD_CHAT_FROM_DISCORD": "maybe"}),
        pytest.raises(SettingsError) as refused,
    ):
        load_settings(_env_file=None)
    assert "LANGUARD_CHAT_FROM_DISCORD is invalid" in str(refused.value)
    assert "use true or false" in str(refused.value)
