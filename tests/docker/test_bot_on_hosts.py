"""The real bot with Arma 3 servers on real Docker engines, driven through Discord.

The product (tests/e2e/product.py: the real LanguardBot on the fake Discord, the fake Arma 3
as `LANGUARD_ARMA3_EXECUTABLE`) reads a hosts.toml declaring host `a` = engine A (unix
socket: the bot's own machine, bind mounts), `b` = engine B (TCP with mutual TLS: another
machine, named volumes) and `c` = a third engine with --live-restore, which the last test
stops and starts. Images are the tiny test image; this machine's Python, the repository and
the fake game's folder come in as read-only mounts declared in hosts.toml, as an operator
declares a game install. Members act through Discord only; the engines' own API (not the
code under test) says where containers run and what their volumes hold.

One bot for the module; tests run in file order and follow server `bravo` on host b, with
`hotel` (b) for the OOM kill, `alfa` (a) for the bot restart and `charlie` (c) for the
engine that goes away.
"""

from __future__ import annotations

import asyncio
import hashlib
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

# discord.py imports the deprecated `audioop`; with filterwarnings=error that import would
# fail (tests/e2e/conftest.py does the same for the e2e folder)
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord  # noqa: F401

from core.supervisor.states import ServerState
from tests.docker.bot_hosts import (
    containers_on,
    data_mount,
    file_in_container,
    hosts_toml,
    inspect_container,
    numbers,
    posted_lines,
    remove_instance,
    titled,
)
from tests.docker.conftest import live_restore_engine
from tests.docker.engines import (
    DockerDaemon,
    pause_engine,
    resume_engine,
)
from tests.e2e.fake_discord import FakeChannel
from tests.e2e.product import (
    GAME_TIMEOUT,
    Product,
    free_arma_port,
    open_product,
    text_of,
    until,
)
from tests.fakes.pbo_factory import mission_pbo

pytestmark = pytest.mark.asyncio(loop_scope="module")

WAIT = 30.0
"""Bounds every wait on the bot, the engines and the games (a loaded 2-core machine)."""
PROBE_INTERVAL = 0.3
UNKNOWN = "unknown (host unreachable)"
MISSION = "co12_remote.altis.pbo"


def guid(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()  # 32 hex characters, like a BattlEye GUID


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine_c(dockerd: str) -> Iterator[DockerDaemon]:
    """A third engine of this module, on TCP with TLS like B, with --live-restore so its
    containers outlive a stop of dockerd."""
    with live_restore_engine(dockerd, "c", tcp=True) as engine:
        yield engine


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(
    tmp_path_factory: pytest.TempPathFactory,
    engines: tuple[DockerDaemon, DockerDaemon],
    engine_c: DockerDaemon,
) -> AsyncIterator[Product]:
    tmp = tmp_path_factory.mktemp("bot-on-hosts")
    engine_a, engine_b = engines
    declared = hosts_toml((("a", engine_a), ("b", engine_b), ("c", engine_c)), tmp / "bin")
    env = {"LANGUARD_HOST_PROBE_INTERVAL": str(PROBE_INTERVAL)}
    instance = ""
    try:
        async with open_product(tmp, hosts_toml=declared, env=env) as opened:
            instance = opened.running.services.supervisor.instance
            yield opened
    finally:
        if instance:
            await asyncio.to_thread(remove_instance, (engine_a, engine_b, engine_c), instance)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def channels(product: Product) -> dict[str, FakeChannel]:
    made = {"logs": product.fake.add_channel("logs"), "alerts": product.fake.add_channel("alerts")}
    await product.fake.resync_guild()  # the bot sees the new channels
    return made


# -- helpers ---------------------------------------------------------------------------------


def console_lines(product: Product, server: str) -> list[str]:
    log = product.server_folder(server) / "console.log"
    try:
        return log.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []


async def create_on(product: Product, name: str, host: str, channels: dict[str, Any]) -> None:
    """`/server create … host:` and `/server channels` as the owner."""
    port = free_arma_port()
    created = await product.reply(
        "server create", {"name": name, "game": "arma3", "port": port, "host": host}
    )
    assert f"**{name}** (arma3) on host {host}, port {port}." in text_of(created), text_of(created)
    bound = await product.reply(
        "server channels", {"server": name, "logs": channels["logs"], "alerts": channels["alerts"]}
    )
    assert "Channels" in text_of(bound), text_of(bound)


async def start(product: Product, name: str) -> None:
    handle = await product.run("server start", {"server": name})
    final = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    assert "is **running**" in text_of(final), text_of(final)


async def list_line(product: Product, name: str) -> str:
    listed = text_of(await product.reply("server list", user=product.cast.viewer))
    return next(line for line in listed.splitlines() if f"**{name}**" in line)


async def shown_as(product: Product, name: str, words: str) -> str:
    """Poll `/server list` until `name`'s line says `words`."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        line = await list_line(product, name)
        if words in line:
            return line
        assert asyncio.get_running_loop().time() < deadline, line
        await asyncio.sleep(0.2)


async def the_container(product: Product, engine: DockerDaemon, name: str) -> dict[str, Any]:
    """The one running container of server `name` on `engine`, inspected."""
    supervisor = product.running.services.supervisor
    listed = await containers_on(engine, supervisor.instance, product.server(name).id)
    assert len(listed) == 1, listed
    inspected = await inspect_container(engine, str(listed[0]["Id"]))
    assert inspected is not None and inspected["State"]["Running"]
    return inspected


async def flood_delivered(product: Product, server: str, tag: str, count: int) -> list[int]:
    """Wait until console.log holds line `count` of flood `tag`; its numbers, in order."""
    await until(lambda: count in numbers(console_lines(product, server), tag), WAIT, f"flood {tag}")
    return numbers(console_lines(product, server), tag)


# -- a server on host b ----------------------------------------------------------------------


async def test_a_server_created_on_host_b_runs_in_a_container_there(
    product: Product,
    channels: dict[str, FakeChannel],
    engines: tuple[DockerDaemon, DockerDaemon],
    engine_c: DockerDaemon,
) -> None:
    engine_a, engine_b = engines
    await create_on(product, "bravo", "b", channels)
    await start(product, "bravo")
    container = await the_container(product, engine_b, "bravo")
    assert container["HostConfig"]["NetworkMode"] == "host"
    assert container["Name"] == f"/languard-bravo-{product.server('bravo').id}"
    instance = product.running.services.supervisor.instance
    for other in (engine_a, engine_c):  # on b, and nowhere else
        assert await containers_on(other, instance, product.server("bravo").id, every=True) == []
    # the server's files are in b's volume, not in the bot's folder
    folder = product.server_folder("bravo")
    assert data_mount(container, folder)["Type"] == "volume"
    assert b"hostname" in (
        await file_in_container(engine_b, container["Id"], folder / "server.cfg") or b""
    )
    assert not (folder / "server.cfg").exists()
    line = await list_line(product, "bravo")
    assert "(arma3 on b) — running" in line, line


async def test_players_kick_and_ban_over_rcon_to_the_container(
    product: Product, engines: tuple[DockerDaemon, DockerDaemon]
) -> None:
    moderator = product.cast.moderator
    await product.join("bravo", "Alice", guid("alice"), "198.51.100.20")
    await product.join("bravo", "Mallory", guid("mallory"), "198.51.100.21")
    listed = await product.reply("players list", {"server": "bravo"}, user=product.cast.viewer)
    assert "bravo: 2 online" in text_of(listed) and "**Alice**" in text_of(listed)

    slots = {p["name"]: str(p["slot"]) for p in (await product.game_state("bravo"))["players"]}
    kicked = await product.reply(
        "players kick",
        {"server": "bravo", "player": slots["Alice"], "reason": "afk"},
        user=moderator,
    )
    assert "**Alice** left bravo." in text_of(kicked)
    banned = await product.reply(
        "players ban",
        {"server": "bravo", "player": slots["Mallory"], "duration": "1d", "reason": "tk"},
        user=moderator,
    )
    assert f"`{guid('mallory')}` until" in text_of(banned), text_of(banned)
    state = await product.game_state("bravo")
    assert state["players"] == []
    assert [b["target"] for b in state["bans"]] == [guid("mallory")]
    # the game wrote its bans.txt in the volume on b
    container = await the_container(product, engines[1], "bravo")
    bans_txt = product.server_folder("bravo") / "battleye" / "bans.txt"
    written = await file_in_container(engines[1], container["Id"], bans_txt)
    assert written is not None and guid("mallory").encode() in written


async def test_a_mission_upload_lands_in_the_container_volume(
    product: Product, engines: tuple[DockerDaemon, DockerDaemon]
) -> None:
    operator = product.cast.operator
    data = mission_pbo("co12_remote")
    stored = product.fake.add_attachment(MISSION, data, "application/octet-stream")
    handle = await product.run(
        "missions upload", {"server": "bravo", "file": stored}, user=operator
    )
    done = await handle.message(until=lambda m: bool(m.embeds))
    assert "Mission stored" in text_of(done), text_of(done)
    container = await the_container(product, engines[1], "bravo")
    path = product.server_folder("bravo") / "mpmissions" / MISSION
    assert await file_in_container(engines[1], container["Id"], path) == data
    assert MISSION in (await product.game("bravo", "missions")).splitlines()  # the game sees it

    handle = await product.run(
        "missions delete", {"server": "bravo", "mission": MISSION}, user=operator
    )
    await product.press(handle, "Delete")
    await handle.message(until=lambda m: "deleted" in m.content)
    assert await file_in_container(engines[1], container["Id"], path) is None
    assert MISSION not in (await product.game("bravo", "missions")).splitlines()


async def test_a_log_flood_is_delivered_once_in_order(
    product: Product, channels: dict[str, FakeChannel]
) -> None:
    count = 2000
    await product.game("bravo", f"fake.flood burst {count}")
    assert await flood_delivered(product, "bravo", "burst", count) == list(range(1, count + 1))
    logs = channels["logs"]
    await until(
        lambda: count in numbers(posted_lines(product, logs), "burst"), WAIT, "the flood on Discord"
    )
    assert numbers(posted_lines(product, logs), "burst") == list(range(1, count + 1))


async def test_a_crash_is_restarted_in_a_new_container(
    product: Product, channels: dict[str, FakeChannel], engines: tuple[DockerDaemon, DockerDaemon]
) -> None:
    engine_b = engines[1]
    server = product.server("bravo")
    first = (await the_container(product, engine_b, "bravo"))["Id"]
    await product.game("bravo", "fake.crash 3")
    [alert] = await until(
        lambda: titled(product, channels["alerts"], "bravo crashed"), WAIT, "alert"
    )
    assert "exit code 3" in alert.embed_text() and "attempt 1 of 5" in alert.embed_text()
    await until(
        lambda: (
            server.state is ServerState.RUNNING and server.handle and server.handle.ident != first
        ),
        WAIT,
        "the restart",
    )
    again = await the_container(product, engine_b, "bravo")
    assert again["Id"] != first and await inspect_container(engine_b, first) is None
    assert await product.game_state("bravo")  # RCon answers from the new container


async def test_an_oom_kill_is_said_in_the_crash_alert(
    product: Product, channels: dict[str, FakeChannel]
) -> None:
    await create_on(product, "hotel", "b", channels)
    for key, value in (("memory_limit_mb", "64"), ("auto_restart", "off")):
        changed = await product.reply("server set", {"server": "hotel", "key": key, "value": value})
        assert "Setting changed" in text_of(changed), text_of(changed)
    await start(product, "hotel")
    await product.game("hotel", "fake.hog 512")
    [alert] = await until(
        lambda: titled(product, channels["alerts"], "hotel crashed"), WAIT, "alert"
    )
    assert "killed: out of memory" in alert.embed_text(), alert.embed_text()
    assert product.server("hotel").state is ServerState.CRASHED


# -- the bot restarts ------------------------------------------------------------------------


async def test_a_bot_restart_adopts_on_both_hosts_without_restart_or_gap(
    product: Product, channels: dict[str, FakeChannel], engines: tuple[DockerDaemon, DockerDaemon]
) -> None:
    engine_a, engine_b = engines
    await create_on(product, "alfa", "a", channels)
    await start(product, "alfa")
    where = {"alfa": engine_a, "bravo": engine_b}
    before = {name: await the_container(product, engine, name) for name, engine in where.items()}
    folder = product.server_folder("alfa")
    assert data_mount(before["alfa"], folder)["Type"] == "bind"  # the bot's own machine
    for name in where:  # the games keep logging while the bot is away
        await product.game(name, "fake.flood restart 300 0.01")
    await product.stop_bot()
    await product.start_bot()
    for name, engine in where.items():
        server = product.server(name)
        assert server.state is ServerState.RUNNING and server.handle is not None
        assert server.handle.adopted and server.handle.ident == before[name]["Id"]
        after = await the_container(product, engine, name)
        assert after["State"]["StartedAt"] == before[name]["State"]["StartedAt"]  # no restart
        got = await flood_delivered(product, name, "restart", 300)
        assert got == list(range(1, 301)), name
    assert titled(product, channels["alerts"], "alfa crashed") == []


# -- host c goes away and comes back ------------------------------------------------------


async def test_an_engine_away_shows_unknown_then_is_reconciled(
    product: Product, channels: dict[str, FakeChannel], engine_c: DockerDaemon, dockerd: str
) -> None:
    alerts = channels["alerts"]
    await create_on(product, "charlie", "c", channels)
    await start(product, "charlie")
    first = (await the_container(product, engine_c, "charlie"))["Id"]
    await product.game("charlie", "fake.flood away 500 0.01")
    await asyncio.to_thread(pause_engine, engine_c)
    try:
        line = await shown_as(product, "charlie", UNKNOWN)
        assert "running" not in line and "crashed" not in line
        await until(lambda: titled(product, alerts, "Host c unreachable"), WAIT, "host alert")
        # a mission the host cannot take is refused, and not kept on the bot's side either
        stored = product.fake.add_attachment(MISSION, mission_pbo("co12_remote"), "x/pbo")
        refused = await product.error(
            "missions upload", {"server": "charlie", "file": stored}, user=product.cast.operator
        )
        assert f"cannot write {MISSION}: the Docker engine of host c does not answer" in refused
        assert not (product.server_folder("charlie") / "mpmissions" / MISSION).exists()
    finally:
        await asyncio.to_thread(resume_engine, engine_c, dockerd)
    await shown_as(product, "charlie", "— running")
    handle = product.server("charlie").handle
    assert handle is not None and handle.ident == first  # reconciled: the same container
    assert (await the_container(product, engine_c, "charlie"))["Id"] == first
    assert await flood_delivered(product, "charlie", "away", 500) == list(range(1, 501))
    await until(lambda: titled(product, alerts, "Host c is back"), WAIT, "the host back")
    assert len(titled(product, alerts, "Host c unreachable")) == 1
    assert titled(product, alerts, "charlie crashed") == []
