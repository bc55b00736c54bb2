"""The start queue in Discord: a start that does not fit its host waits, shows its place,
can be cancelled by whoever asked, and runs when room frees up.

The real bot and discord.py on the fake Discord, fake Arma 3 servers as real processes,
real SQLite. The data folder's hosts.toml declares only `local`, with room for one server
and 1 GiB of memory in all. One bot for the module; each test starts from every server
stopped and stops what it started.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
import pytest_asyncio

from core.hosts.queue import HostUsage, StartQueue
from core.supervisor.states import ServerState
from tests.e2e.fake_discord import FakeMessage, InteractionHandle
from tests.e2e.product import (
    GAME_TIMEOUT,
    Product,
    is_error,
    open_product,
    text_of,
    until,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOSTS_TOML = '[[hosts]]\nname = "local"\ncapacity = { servers = 1, memory = "1G" }\n'
A, B, C, BIG = "queue-a", "queue-b", "queue-c", "queue-big"
REPLY = 10.0
S = ServerState


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("start-queue"), hosts_toml=HOSTS_TOML) as p:
        for name in (A, B, C, BIG):
            await p.create_server(name)
        yield p


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def at_rest(product: Product) -> AsyncIterator[None]:
    """Every test starts with nothing running and nothing waiting, and leaves it so."""
    assert queue(product).usage("local") == HostUsage(0, 0, 0)
    yield
    product.note_pids()
    assert queue(product).usage("local") == HostUsage(0, 0, 0)


def queue(product: Product) -> StartQueue:
    return product.running.services.fleet.queue


def running_here(product: Product) -> int:
    """Game processes the bot really has on this machine."""
    return sum(1 for s in product.running.services.supervisor.all() if s.handle is not None)


def waiting_at(place: int) -> Callable[[FakeMessage], bool]:
    return lambda msg: f"place {place} in the queue" in msg.content


def buttons(msg: FakeMessage) -> list[str]:
    return [str(c.get("label")) for c in msg.iter_components() if c.get("type") == 2]


async def start(product: Product, name: str) -> InteractionHandle:
    return await product.run("server start", {"server": name})


async def outcome(handle: InteractionHandle) -> FakeMessage:
    """The reply once it carries the result embed (after the place and the steps)."""
    return await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))


async def started(product: Product, name: str) -> InteractionHandle:
    handle = await start(product, name)
    assert f"**{name}** is **running**" in text_of(await outcome(handle))
    return handle


async def waiting(product: Product, name: str, place: int) -> InteractionHandle:
    handle = await start(product, name)
    await handle.message(REPLY, until=waiting_at(place))
    return handle


async def stop(product: Product, name: str) -> None:
    handle = await product.run("server stop", {"server": name})
    assert f"**{name}** is **stopped**" in text_of(await outcome(handle))


async def french_error(product: Product, name: str, options: Mapping[str, Any]) -> str:
    """A command refused, run by a member whose Discord speaks French: the ⚠️ answer."""
    handle = await product.fake.invoke_slash(name, options, user=product.cast.owner, locale="fr")

    def answered() -> FakeMessage | None:
        found = [m for m in (handle.original, *handle.followups) if m is not None]
        return next((m for m in found if not m.deleted and is_error(m)), None)

    msg = await product.fake.state.notifier.wait_for(answered, REPLY, "an error answer")
    assert msg.ephemeral, text_of(msg)
    return text_of(msg)


async def host_running(product: Product) -> int:
    """What `/host` says runs."""
    text = text_of(await product.reply("host", timeout=GAME_TIMEOUT))
    found = re.search(r"(\d+) running", text)
    assert found, text
    return int(found.group(1))


# -- waiting, then running -------------------------------------------------------------------


async def test_a_start_that_does_not_fit_waits_then_runs_when_room_frees_up(
    product: Product,
) -> None:
    await started(product, A)
    handle = await start(product, B)
    shown = await handle.message(REPLY, until=waiting_at(1))
    assert not shown.ephemeral
    assert shown.content == "⏳ queue-b waits for room on host local: place 1 in the queue"
    assert buttons(shown) == ["Cancel"]
    assert product.server(B).state is S.STOPPED
    assert queue(product).usage("local") == HostUsage(1, 0, 1)

    await stop(product, A)
    done = await outcome(handle)
    assert "**queue-b** is **running**" in text_of(done)
    assert "⏳ starting… → ✅ running" in done.content
    assert "place" not in done.content and buttons(done) == []
    assert product.server(B).state is S.RUNNING
    await stop(product, B)


# -- cancel, and who may ---------------------------------------------------------------------


async def test_a_cancelled_start_leaves_the_queue_and_the_next_moves_up(product: Product) -> None:
    cast = product.cast
    await started(product, A)
    second = await waiting(product, B, 1)
    third = await waiting(product, C, 2)

    # a second start of a waiting server is refused at once, in the member's language
    text = await french_error(product, "server start", {"server": B})
    assert "queue-b attend déjà de démarrer sur local (place 1)" in text, text

    # a public reply: anyone sees the button, only who asked for the start may press it
    other = await product.press(second, "Cancel", user=cast.operator)
    refusal = await other.message(REPLY)
    assert refusal.ephemeral and "Only the person who ran the command" in refusal.content
    assert queue(product).ticket(product.server(B).id) is not None

    await product.press(second, "Cancel")
    gone = await second.message(REPLY, until=lambda m: "cancelled" in m.content)
    assert gone.content == "⏹️ The start of **queue-b** was cancelled."
    assert buttons(gone) == [] and not gone.embeds
    moved = await third.message(REPLY, until=waiting_at(1))
    assert buttons(moved) == ["Cancel"]
    assert product.server(B).state is S.STOPPED
    assert [t.server for t in queue(product).waiting("local")] == [C]

    await stop(product, A)
    assert "**queue-c** is **running**" in text_of(await outcome(third))
    assert product.server(B).state is S.STOPPED, "a cancelled start never runs later"
    await stop(product, C)


async def test_a_start_the_host_can_never_hold_is_refused_at_once(product: Product) -> None:
    changed = await product.reply(
        "server set", {"server": BIG, "key": "memory_limit_mb", "value": "2048"}
    )
    assert "Setting changed" in text_of(changed), text_of(changed)
    text = await product.error("server start", {"server": BIG})
    assert "queue-big needs 2 GiB of memory, more than host local offers in all (1 GiB)" in text
    french = await french_error(product, "server start", {"server": BIG})
    assert "plus que l'hôte local n'en offre au total (1 GiB)" in french, french
    assert product.server(BIG).state is S.STOPPED


# -- the status message's Start button -------------------------------------------------------


async def test_the_status_start_button_waits_in_the_queue_too(product: Product) -> None:
    fake = product.fake
    channel = fake.add_channel("queue-status")
    await fake.resync_guild()
    bound = await product.reply("server channels", {"server": B, "status": channel})
    assert "**status** →" in text_of(bound), text_of(bound)
    start_id = f"lg:srv:{product.server(B).id}:start"

    def status_message() -> FakeMessage | None:
        found = [m for m in fake.messages(channel) if not m.deleted and start_id in m.custom_ids()]
        return found[0] if found else None

    msg = await until(status_message, REPLY, "B's status message")
    await started(product, A)
    pressed = await fake.click_button(msg, start_id, user=product.cast.operator)
    shown = await pressed.message(REPLY, until=waiting_at(1))
    assert shown.ephemeral and buttons(shown) == ["Cancel"]
    assert product.server(B).state is S.STOPPED

    forged = await product.press_as_other(pressed, "Cancel", product.cast.admin)
    refusal = await forged.message(REPLY)
    assert refusal.ephemeral and "Only the person who ran the command" in refusal.content
    await product.press(pressed, "Cancel")
    gone = await pressed.message(REPLY, until=lambda m: "cancelled" in m.content)
    assert buttons(gone) == []
    assert queue(product).waiting("local") == ()
    await stop(product, A)
    assert product.server(B).state is S.STOPPED


# -- a crash with an automatic restart -------------------------------------------------------


async def test_a_crash_restart_and_a_waiting_start_never_count_more_than_really_runs(
    product: Product,
) -> None:
    """Today A's crash frees its place, so B is admitted before A's automatic restart, which
    then runs above the capacity (counted anyway). Keeping the place of a crash whose
    restart is pending would be stricter; either way, the ledger and /host must count
    exactly the processes that run, and nothing once all is stopped."""
    await started(product, A)
    second = await waiting(product, B, 1)
    first = product.server(A)
    assert first.handle is not None and first.handle.pid is not None
    pid = first.handle.pid
    os.kill(pid, signal.SIGKILL)

    def restarted() -> bool:
        handle = product.server(A).handle
        return product.server(A).state is S.RUNNING and handle is not None and handle.pid != pid

    await until(restarted, GAME_TIMEOUT, "A's automatic restart")

    def settled() -> bool:
        moving = {product.server(n).state for n in (A, B)} & {S.STARTING, S.STOPPING}
        reply = second.original
        shown = reply is not None and (bool(reply.embeds) or "place 1" in reply.content)
        return not moving and shown

    await until(settled, GAME_TIMEOUT, "A and B settled")
    really = running_here(product)
    assert queue(product).usage("local").servers == really
    assert await host_running(product) == really

    await stop(product, A)
    assert "**queue-b** is **running**" in text_of(await outcome(second))
    await stop(product, B)
    assert running_here(product) == 0
    assert await host_running(product) == 0


# -- a wait longer than the interaction token's 15 minutes (last: it moves the fake's clock) --


async def test_a_wait_past_the_token_life_still_ends_in_the_result(product: Product) -> None:
    fake = product.fake
    await started(product, A)
    second = await waiting(product, B, 1)
    fake.advance_clock(16 * 60)  # Discord now refuses B's token

    await stop(product, A)
    done = await outcome(second)
    assert "**queue-b** is **running**" in text_of(done)
    assert buttons(done) == []
    token = second.token
    refused = [r for r in fake.state.requests if token in r.path and r.status == 404]
    assert refused, "the token was never refused: the test did not pass the 15 minutes"
    edits = [r for r in fake.state.requests if r.method == "PATCH" and f"/{done.id}" in r.path]
    assert any("/channels/" in r.path and r.status == 200 for r in edits), "no channel edit"
    await stop(product, B)
