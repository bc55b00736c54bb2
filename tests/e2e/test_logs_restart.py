"""/logs after a bot restart, end to end: the lines come from the files on disk.

The Arma 3 fake runs Linux-style (its whole log on stdout, no RPT). The bot is stopped and
started again on the same data folder; the game keeps running and says next to nothing new
(the new RCon login), so /logs tail and /logs search must read console.log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.product import Product, open_product, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "foxtrot"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("logs")) as opened:
        await opened.create_server(SERVER, start=True)
        yield opened


async def test_logs_tail_and_search_survive_a_bot_restart(product: Product) -> None:
    operator = product.cast.operator
    before = await product.reply("logs tail", {"server": SERVER, "lines": 5}, user=operator)
    assert "Host identity created." in before.content or "Waiting for next game" in before.content

    await product.stop_bot()
    await product.start_bot()
    ring = product.server(SERVER).logs.ring  # at most the RCon login of the new bot
    assert len(ring) < 5, "the new bot's memory cannot answer a tail of 5"

    tail = await product.reply("logs tail", {"server": SERVER, "lines": 5}, user=operator)
    assert tail.ephemeral and tail.content.startswith(f"**{SERVER}: last 5 lines**")
    assert "Waiting for next game." in tail.content
    found = await product.reply(
        "logs search", {"server": SERVER, "text": "dedicated host"}, user=operator
    )
    assert "1 line(s) matching the search" in text_of(found)
    assert "Dedicated host created." in found.content
