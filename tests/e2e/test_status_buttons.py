"""The status embed's Start / Stop / Restart buttons, end to end: the real bot and discord.py
on the fake Discord, a real fake Arma 3 process, real SQLite.

One bot for the module; the tests run in file order and follow server "sb-alpha": its
status message is posted by `/server channels`, its buttons are refused below operator and
work at operator (with the same confirmation as `/server stop` when players are online),
and still do after the bot is closed and a new one started on the same data and the same
fake Discord, pressed on the message the old bot posted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from core.supervisor.states import ServerState
from tests.e2e.fake_discord import FakeChannel, FakeMessage, InteractionHandle
from tests.e2e.product import GAME_TIMEOUT, Principal, Product, open_product, text_of, until

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALPHA = "sb-alpha"
BETA = "sb-beta"
GUID = "fedcba9876543210fedcba9876543210"
SPARK = set("▁▂▃▄▅▆▇█")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("status-buttons")) as opened:
        yield opened


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def channel(product: Product) -> FakeChannel:
    """The status channel of sb-alpha (and sb-beta's stays unbound: it has no message)."""
    status = product.fake.add_channel("status")
    await product.fake.resync_guild()
    await product.create_server(ALPHA)
    await product.create_server(BETA)
    bound = await product.reply("server channels", {"server": ALPHA, "status": status})
    assert "**status** →" in text_of(bound), text_of(bound)
    return status


def status_message(product: Product, channel: FakeChannel) -> FakeMessage | None:
    found = [m for m in product.fake.messages(channel) if not m.deleted and m.custom_ids()]
    assert len(found) <= 1, "a second status message was posted"
    return found[0] if found else None


def buttons(msg: FakeMessage) -> dict[str, dict[str, Any]]:
    return {str(c["label"]): c for c in msg.iter_components() if c.get("type") == 2}


def shows(msg: FakeMessage, state: str) -> Callable[[], bool]:
    """The embed says `state` and the buttons were redrawn for it."""

    def check() -> bool:
        if f"**{state}**" not in text_of(msg):
            return False
        start = buttons(msg)["Start"]
        return bool(start.get("disabled")) == (state == "running")

    return check


async def press(
    product: Product, msg: FakeMessage, label: str, user: Principal
) -> InteractionHandle:
    return await product.fake.click_button(msg, str(buttons(msg)[label]["custom_id"]), user=user)


async def press_forged(
    product: Product, msg: FakeMessage, custom_id: str, user: Principal
) -> InteractionHandle:
    """A press whose custom id was not on the message Discord showed: a modified client (the
    message in the payload is rewritten to carry it, else discord.py drops the press)."""
    fake = product.fake
    forged = dataclasses.replace(
        msg,
        components=[
            {
                "type": 1,
                "components": [{"type": 2, "style": 1, "label": "Start", "custom_id": custom_id}],
            }
        ],
    )
    return await fake.forge_press(forged, custom_id, user)


async def refused(handle: InteractionHandle) -> str:
    answer = await handle.message(10)
    assert answer.ephemeral, text_of(answer)
    return text_of(answer)


async def outcome(handle: InteractionHandle) -> str:
    """The ephemeral answer once it carries the result embed (after the progress lines)."""
    answer = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    assert answer.ephemeral, text_of(answer)
    return text_of(answer)


async def test_the_embed_shows_address_state_and_buttons_fitting_the_state(
    product: Product, channel: FakeChannel
) -> None:
    msg = await until(lambda: status_message(product, channel), 10, "the status message")
    await until(shows(msg, "stopped"), 10, "a stopped status")
    address = (await product.running.services.servers.status(ALPHA)).address
    assert address.startswith("127.0.0.1:") and f"`{address}`" in text_of(msg)
    shown = buttons(msg)
    assert not shown["Start"].get("disabled")
    assert shown["Stop"].get("disabled") and shown["Restart"].get("disabled")
    server_id = product.server(ALPHA).id
    assert shown["Start"]["custom_id"] == f"lg:srv:{server_id}:start"


async def test_buttons_are_refused_below_operator_and_work_at_operator(
    product: Product, channel: FakeChannel
) -> None:
    cast = product.cast
    msg = status_message(product, channel)
    assert msg is not None
    for who in (cast.viewer, cast.nobody):
        text = await refused(await press(product, msg, "Start", who))
        assert "You need the **operator** level" in text
    assert product.server(ALPHA).state is ServerState.STOPPED
    assert "denied:server start" in await product.audit_text(server=ALPHA)

    assert "is **running**" in await outcome(await press(product, msg, "Start", cast.operator))
    await until(shows(msg, "running"), 10, "a running status with Start disabled")
    assert not buttons(msg)["Stop"].get("disabled")
    assert "server.start" in await product.audit_text(server=ALPHA)

    await product.join(ALPHA, "Ann*bold*", GUID, "198.51.100.20")
    await until(lambda: "Ann\\*bold\\*" in text_of(msg), 10, "the player's escaped name")
    text = text_of(msg)
    assert "1/" in text and "Up since" in text and "<t:" in text
    assert "(peak 1)" in text and SPARK & set(text), text

    # a player is online: Stop asks first, like /server stop
    handle = await press(product, msg, "Stop", cast.operator)
    question = await handle.message(10)
    assert question.ephemeral and "1 player(s) online" in text_of(question)
    await product.press(handle, "Stop")
    assert "is **stopped**" in await outcome(handle)
    await until(shows(msg, "stopped"), 10, "a stopped status again")


async def test_buttons_still_work_after_a_bot_restart(
    product: Product, channel: FakeChannel
) -> None:
    cast = product.cast
    old = status_message(product, channel)
    assert old is not None
    await product.stop_bot()
    await product.start_bot()
    text = await refused(await press(product, old, "Start", cast.viewer))
    assert "You need the **operator** level" in text
    assert "is **running**" in await outcome(await press(product, old, "Start", cast.operator))
    await until(shows(old, "running"), 10, "the old message edited to running")
    assert status_message(product, channel) is old
    # nobody online now: Stop needs no confirmation
    assert "is **stopped**" in await outcome(await press(product, old, "Stop", cast.operator))
    await until(shows(old, "stopped"), 10, "the old message edited to stopped")


async def test_a_forged_custom_id_for_a_server_the_member_cannot_operate_is_refused(
    product: Product, channel: FakeChannel
) -> None:
    fake = product.fake
    scoped = fake.add_role("Alpha Ops")
    sam = fake.add_user("sam", roles=[scoped])
    await fake.resync_guild()
    granted = await product.reply(
        "perms grant", {"role": scoped, "level": "operator", "server": ALPHA}
    )
    assert "now **operator**" in text_of(granted), text_of(granted)
    msg = status_message(product, channel)
    assert msg is not None
    beta = product.server(BETA)
    text = await refused(await press_forged(product, msg, f"lg:srv:{beta.id}:start", sam))
    assert "You need the **operator** level" in text
    assert product.server(BETA).state is ServerState.STOPPED
    gone = await refused(await press_forged(product, msg, "lg:srv:999999:start", sam))
    assert "no longer exists" in gone
    # sam may operate alpha itself, through the real button
    assert "is **running**" in await outcome(await press(product, msg, "Start", sam))
    await until(shows(msg, "running"), 10, "Stop enabled")
    assert "is **stopped**" in await outcome(await press(product, msg, "Stop", sam))
