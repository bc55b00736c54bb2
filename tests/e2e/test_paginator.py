"""Every list pages: the real bot on the fake Discord, pressing Previous / Next like a user.

One bot for the module and one running fake Arma 3 server ("pager") for the player lists.
The bans are made with `/bans add`, the players join through the fake game; nothing is
seeded behind the bot's back. Tests run in file order and count what earlier ones made
(45 bans, 30 players), so each list's total is known.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import pytest
import pytest_asyncio

from tests.e2e.fake_discord import FakeMessage
from tests.e2e.product import Product, open_product, text_of, until

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "pager"
PLAYERS = 30


def guid(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("paginator")) as opened:
        await opened.create_server(SERVER, start=True)
        yield opened


def footer(msg: FakeMessage) -> str:
    return str((msg.embeds[0].get("footer") or {}).get("text", ""))


def description(msg: FakeMessage) -> str:
    return str(msg.embeds[0].get("description", ""))


def buttons(msg: FakeMessage) -> dict[str, bool]:
    """Label → disabled, for every button on the message."""
    return {
        str(c.get("label")): bool(c.get("disabled"))
        for c in msg.iter_components()
        if c.get("type") == 2
    }


def ban_ids(msg: FakeMessage) -> list[str]:
    return re.findall(r"^`#(\d+)`", description(msg), flags=re.MULTILINE)


async def turned(product: Product, handle: Any, label: str, page: str, **who: Any) -> FakeMessage:
    """Press `label` and return the message once it shows `page` ("page 2 of 2")."""
    pressed = await product.press(handle, label, **who)
    await pressed.response()
    return await handle.message(until=lambda m: page in footer(m))


async def test_45_bans_page_as_25_and_20_with_the_total_on_both(product: Product) -> None:
    moderator = product.cast.moderator
    for n in range(45):
        msg = await product.reply(
            "bans add", {"id": guid(f"pest{n}"), "duration": "7d"}, user=moderator
        )
        assert "Ban added" in text_of(msg), text_of(msg)

    handle = await product.run("bans list", user=moderator)
    first = await handle.message()
    assert first.ephemeral
    assert footer(first) == "45 bans · page 1 of 2"
    assert buttons(first) == {"Previous": True, "page 1 of 2": True, "Next": False}
    page_one = ban_ids(first)
    assert len(page_one) == 25

    second = await turned(product, handle, "Next", "page 2 of 2")
    assert footer(second) == "45 bans · page 2 of 2"
    assert buttons(second) == {"Previous": False, "page 2 of 2": True, "Next": True}
    page_two = ban_ids(second)
    assert len(page_two) == 20
    assert len(set(page_one) | set(page_two)) == 45, "every ban once, none lost"

    back = await turned(product, handle, "Previous", "page 1 of 2")
    assert ban_ids(back) == page_one
    assert len(description(back)) <= 4096


async def test_someone_else_cannot_page_an_ephemeral_list(product: Product) -> None:
    cast = product.cast
    handle = await product.run("bans list", user=cast.moderator)
    first = await handle.message()
    shown = description(first)
    other = await product.press_as_other(handle, "Next", cast.operator)
    refusal = await other.message()
    assert refusal.ephemeral and "Only mona can page this." in refusal.content
    msg = await handle.message()
    assert description(msg) == shown and footer(msg) == "45 bans · page 1 of 2"


async def test_a_public_list_refuses_another_member_and_stays_put(product: Product) -> None:
    cast = product.cast
    for n in range(PLAYERS):
        await product.join(SERVER, f"Pager{n:02d}", guid(f"pager{n}"), f"198.51.100.{n + 1}")
    handle = await product.run("players list", {"server": SERVER}, user=cast.viewer)
    first = await handle.message()
    assert not first.ephemeral
    assert f"{SERVER}: {PLAYERS} online" in text_of(first)
    assert footer(first) == f"{PLAYERS} players · page 1 of 2"
    shown = description(first)
    assert shown.count("\n") == 24  # 25 players on the first page

    # the message is public: the other member clicks it through their own client
    other = await product.press(handle, "Next", user=cast.operator)
    refusal = await other.message()
    assert refusal.ephemeral and "Only vic can page this." in refusal.content
    msg = await handle.message()
    assert description(msg) == shown and "page 1 of 2" in footer(msg)

    second = await turned(product, handle, "Next", "page 2 of 2", user=cast.viewer)
    assert description(second).count("\n") == PLAYERS - 25 - 1


async def test_player_history_pages_with_its_total(product: Product) -> None:
    moderator = product.cast.moderator
    handle = await product.run("players history", {"query": "pager"}, user=moderator)
    first = await handle.message()
    assert first.ephemeral
    assert footer(first) == f"{PLAYERS} players · page 1 of 3"
    assert description(first).count("(arma3)") == 10
    names = set(re.findall(r"\*\*(Pager\d\d)\*\*", description(first)))
    second = await turned(product, handle, "Next", "page 2 of 3", user=moderator)
    assert footer(second).startswith(f"{PLAYERS} players · ")
    assert description(second).count("(arma3)") == 10
    assert names.isdisjoint(re.findall(r"\*\*(Pager\d\d)\*\*", description(second)))


async def test_a_one_page_list_has_no_buttons(product: Product) -> None:
    msg = await product.reply("server list", user=product.cast.viewer)
    assert footer(msg) == "1 server" and SERVER in description(msg)
    assert buttons(msg) == {} and not msg.components


async def test_timeout_disables_the_buttons(product: Product) -> None:
    with mock.patch("bot.paginator.PAGE_TIMEOUT", 0.5):
        handle = await product.run("bans list", user=product.cast.moderator)
        first = await handle.message()
    assert buttons(first)["Next"] is False
    done = await handle.message(
        timeout=10, until=lambda m: bool(buttons(m)) and all(buttons(m).values())
    )
    assert footer(done) == "45 bans · page 1 of 2"  # the page stays, only the buttons go grey


async def test_timeout_after_the_token_expired_is_quiet(
    product: Product, caplog: pytest.LogCaptureFixture
) -> None:
    fake = product.fake
    with mock.patch("bot.paginator.PAGE_TIMEOUT", 1.0):
        handle = await product.run("bans list", user=product.cast.moderator)
        first = await handle.message()
    fake.state.clock.advance(16 * 60)  # past the interaction token's 15 minutes
    token = handle.token

    def refused_edit() -> bool:
        return any(
            r.method == "PATCH" and token in r.path and r.status == 404 for r in fake.state.requests
        )

    with caplog.at_level(logging.ERROR):
        await until(refused_edit, 10, "the timeout's edit refused with 404")
        await until(lambda: True, 0.1, "a moment for the task to end")
    assert buttons(first)["Next"] is False, "the message is left as it was"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
