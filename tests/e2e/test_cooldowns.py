"""Per-member rates on the commands that cost or disrupt: lifecycle, /rcon, missions.

The product runs with the real rates (bot.checks: 3 lifecycle commands per 30 s, 5 /rcon per
30 s, 2 uploads per 60 s, per member). Nothing here waits a window out: the refusal must say
when to retry (a Discord timestamp and the seconds), and that moment must lie inside the
window. A refusal is not the mutation (no `server.start` row), is audited once however often
it is repeated, and one member's rate is not another's. A call refused for its level does not
count against the member's rate.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.checks import LIFECYCLE_RATE, MISSION_UPLOAD_RATE, RCON_RATE
from core.supervisor.states import ServerState
from tests.e2e.product import Principal, Product, open_product

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "cd-alpha"
RETRY = re.compile(r"Slow down: try again <t:(\d+):R> \(in (\d+) s\)")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("cooldowns"), real_rates=True) as opened:
        await opened.create_server(SERVER)
        yield opened


def retry_in(text: str, window: float) -> int:
    """The seconds the refusal asks to wait; its timestamp must agree and lie in the window."""
    found = RETRY.search(text)
    assert found, text
    at, seconds = int(found[1]), int(found[2])
    now = time.time()
    assert 1 <= seconds <= window, text
    assert now - 2 <= at <= now + window + 2, (text, now)
    return seconds


async def stop(product: Product, user: Principal) -> str:
    """A /server stop that runs (and answers that the server is not running)."""
    return await product.error("server stop", {"server": SERVER}, user=user)


async def audit_rows(product: Product, action: str, result: str | None = None) -> int:
    entries = await product.running.services.audit.recent(200)
    return sum(1 for e in entries if e.action == action and result in (None, e.result))


async def test_level_refusals_do_not_spend_the_rate(product: Product) -> None:
    viewer = product.cast.viewer
    for _ in range(LIFECYCLE_RATE.rate + 2):
        refused = await product.error("server start", {"server": SERVER}, user=viewer)
        assert "operator" in refused and "Slow down" not in refused


async def test_lifecycle_commands_share_one_rate_per_member(product: Product) -> None:
    operator = product.cast.operator
    for _ in range(LIFECYCLE_RATE.rate):
        assert "is not running" in await stop(product, operator)
    starts_before = await audit_rows(product, "server.start")

    refused = await product.error("server start", {"server": SERVER}, user=operator)
    retry_in(refused, LIFECYCLE_RATE.per)
    again = await product.error("server restart", {"server": SERVER}, user=operator)
    retry_in(again, LIFECYCLE_RATE.per)
    assert product.server(SERVER).state is ServerState.STOPPED
    assert await audit_rows(product, "server.start") == starts_before  # nothing was done

    # one member's rate is not another's
    assert "is not running" in await stop(product, product.cast.admin)

    # audited, once: however often refused, the audit log is not flooded
    too_many = "refused: too many calls"
    denied = await audit_rows(product, "denied:server start", too_many)
    denied += await audit_rows(product, "denied:server restart", too_many)
    assert denied == 1


async def test_rcon_has_its_own_rate(product: Product) -> None:
    admin = product.cast.admin  # has spent one lifecycle call, none of /rcon
    options = {"server": SERVER, "command": "players"}
    for _ in range(RCON_RATE.rate):
        refused = await product.error("rcon", options, user=admin)
        assert "no RCon connection" in refused  # the command ran (the server is stopped)
    retry_in(await product.error("rcon", options, user=admin), RCON_RATE.per)


async def test_mission_uploads_are_rate_limited(product: Product) -> None:
    operator = product.cast.operator
    for _ in range(MISSION_UPLOAD_RATE.rate):
        refused = await product.error("missions upload", {"server": SERVER}, user=operator)
        assert "attach a .pbo file" in refused
    too_many = await product.error("missions upload", {"server": SERVER}, user=operator)
    assert retry_in(too_many, MISSION_UPLOAD_RATE.per) > MISSION_UPLOAD_RATE.per / 2
    # the other mission commands have a rate of their own
    rotation = await product.error(
        "missions rotation", {"server": SERVER, "missions": "nope.altis"}, user=operator
    )
    assert "Slow down" not in rotation
