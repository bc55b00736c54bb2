"""Several hosts in Discord: `/host`, `/server create host:`, a server on a host that does
not answer, the host alerts, and the same in French.

The real bot on the fake Discord, with a hosts.toml declaring, besides `local`, a Docker
host "box-2" whose engine socket does not exist: the host registry probes it every 0.3 s and
finds it unreachable from the first probe. A server is created there, then written into the
database as a previous bot would leave a container it ran (state running, a Docker boot id)
and the bot restarted: the server must show "unknown (host unreachable)", never running or
crashed, and refuse a start. Last, a small Docker Engine API (the three calls the probe
makes, over HTTP on that unix socket) starts answering: the host is back, said once.
Tests run in file order and follow server "faraway" on box-2.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from core.services.hosts import HostState, HostStatus
from core.supervisor.states import ServerState
from tests.e2e.fake_discord import FakeChannel, FakeMessage
from tests.e2e.product import (
    REPLY_TIMEOUT,
    Product,
    free_arma_port,
    open_product,
    text_of,
    until,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOST = "box-2"
SERVER = "faraway"
PROBE_INTERVAL = 0.3
WAIT = 20.0
"""Bounds every wait on the bot's background work (a loaded 2-core machine)."""
UNKNOWN = "unknown (host unreachable)"
CONTAINER = "ab" * 32

HOSTS_TOML = """\
[[hosts]]
name = "local"

[[hosts]]
name = "{host}"
endpoint = "unix://{socket}"
images = {{ arma3 = "languard/arma3:1" }}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    tmp = tmp_path_factory.mktemp("hosts")
    hosts = HOSTS_TOML.format(host=HOST, socket=tmp / "nothing.sock")
    env = {"LANGUARD_HOST_PROBE_INTERVAL": str(PROBE_INTERVAL)}
    async with open_product(tmp, hosts_toml=hosts, env=env) as opened:
        yield opened


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def channels(product: Product) -> dict[str, FakeChannel]:
    made = {"alerts": product.fake.add_channel("alerts"), "status": product.fake.add_channel("st")}
    await product.fake.resync_guild()  # the bot's cache knows them, as Discord would tell it
    return made


def socket_path(product: Product) -> Path:
    return product.data_dir.parent / "nothing.sock"


def host_status(product: Product) -> HostStatus:
    return next(s for s in product.running.services.fleet.statuses() if s.name == HOST)


def titled(product: Product, channel: FakeChannel, words: str) -> list[FakeMessage]:
    return [
        m
        for m in product.fake.messages(channel)
        if m.embeds and words in str(m.embeds[0].get("title", ""))
    ]


def fields(embed: dict[str, Any]) -> dict[str, str]:
    return {str(f["name"]): str(f["value"]) for f in embed.get("fields") or []}


async def probes(product: Product, count: int) -> None:
    """Until the registry probed box-2 `count` more times (each probe counts a miss)."""
    start = host_status(product).misses
    await until(lambda: host_status(product).misses >= start + count, WAIT, f"{count} probes")


async def test_host_lists_local_and_the_unreachable_host(product: Product) -> None:
    msg = await product.reply("host", user=product.cast.viewer)
    assert len(msg.embeds) == 2, text_of(msg)
    local, other = msg.embeds
    assert str(local["title"]).startswith("🖥️ local · ")
    assert {"CPU", "RAM", "Disk (data)", "Servers"} <= set(fields(local))  # as before
    assert other["title"] == f"🔌 {HOST}"
    description = str(other["description"])
    assert "unreachable since <t:" in description
    assert f"the Docker engine of host {HOST} does not answer" in description
    shown = fields(other)
    assert shown["Engine"] == "not reported" and shown["Memory"] == "not reported"
    assert shown["Games"] == "arma3"
    assert shown["Servers (state unknown)"] == "none" and shown["Waiting to start"] == "none"
    text = text_of(msg)
    assert "nothing.sock" not in text and "unix:" not in text  # no endpoint, no path


async def test_create_on_a_host_with_autocomplete(product: Product) -> None:
    def values(choices: list[dict[str, Any]]) -> list[str]:
        return [str(choice["value"]) for choice in choices]

    typing = {"name": SERVER, "game": "arma3", "host": ""}
    assert values(await product.choices("server create", typing, "host")) == ["local", HOST]
    typed = {**typing, "host": "bo"}
    assert values(await product.choices("server create", typed, "host")) == [HOST]
    # box-2 has no Minecraft image: it is not offered for that game
    minecraft = {**typing, "game": "minecraft"}
    assert values(await product.choices("server create", minecraft, "host")) == ["local"]

    unknown = await product.error("server create", {**typing, "host": "nowhere"})
    assert f"there is no host named nowhere; hosts: local, {HOST}" in unknown
    no_image = await product.error("server create", {**minecraft, "host": HOST})
    assert f"host {HOST} has no image for minecraft" in no_image

    port = free_arma_port()
    created = await product.reply("server create", {**typing, "host": HOST, "port": port})
    assert "Server created" in text_of(created)
    assert f"**{SERVER}** (arma3) on host {HOST}, port {port}." in text_of(created)
    assert product.server(SERVER).runtime.name == HOST


async def test_a_server_on_the_unreachable_host_shows_unknown_and_one_alert_comes(
    product: Product, channels: dict[str, FakeChannel]
) -> None:
    bound = await product.reply(
        "server channels",
        {"server": SERVER, "alerts": channels["alerts"], "status": channels["status"]},
    )
    assert "Channels" in text_of(bound)
    # what a previous bot leaves behind when it ran the server in a container on box-2
    await product.stop_bot()
    with contextlib.closing(sqlite3.connect(product.data_dir / "languard.db")) as db:
        db.execute(
            "UPDATE servers SET state='running', pid=0, pid_create_time=0, cmdline='[]', "
            "started_at=?, boot_id=? WHERE name=?",
            (time.time(), f"docker:{CONTAINER}", SERVER),
        )
        db.commit()
    await product.start_bot()

    [alert] = await until(lambda: titled(product, channels["alerts"], "unreachable"), WAIT, "alert")
    assert alert.embeds[0]["title"] == f"🔌 Host {HOST} unreachable"
    assert f"the Docker engine of host {HOST} does not answer; its servers show unknown" in str(
        alert.embeds[0]["description"]
    )

    # several probes later, still one alert, and never a crash
    await probes(product, 4)
    hub = product.running.channel_hub
    await until(lambda: hub.idle, WAIT, "alerts posted")
    assert len(titled(product, channels["alerts"], "unreachable")) == 1
    assert titled(product, channels["alerts"], "crashed") == []
    assert host_status(product).state is HostState.UNREACHABLE
    assert product.server(SERVER).state is ServerState.RUNNING  # the last known, kept

    listed = text_of(await product.reply("server list", user=product.cast.viewer))
    assert f"❔ **{SERVER}** (arma3 on {HOST}) — {UNKNOWN}" in listed
    line = next(line for line in listed.splitlines() if SERVER in line)
    assert "running" not in line and "crashed" not in line

    status = await product.reply("server status", {"server": SERVER}, user=product.cast.viewer)
    embed = status.embeds[0]
    assert embed["title"] == f"❔ {SERVER}"
    assert embed["description"] == f"**{UNKNOWN}** — host {HOST} does not answer"
    assert fields(embed)["Host"] == HOST and fields(embed)["Uptime"] == "—"
    assert "running" not in text_of(status) and "crashed" not in text_of(status)

    def board() -> FakeMessage | None:
        found = [m for m in product.fake.messages(channels["status"]) if m.embeds]
        shown = found[0].embeds[0].get("description") if found else None
        return found[0] if shown == f"**{UNKNOWN}**" else None

    shown = await until(board, WAIT, "status message showing unknown")
    assert "Players" not in fields(shown.embeds[0])

    refused = await product.error("server start", {"server": SERVER}, user=product.cast.operator)
    assert f"{SERVER} cannot start: host {HOST} does not answer" in refused


async def test_french_reader_sees_the_french_texts(product: Product) -> None:
    viewer = product.cast.viewer
    handle = await product.fake.invoke_slash("server list", {}, user=viewer, locale="fr")
    listed = text_of(await handle.message(REPLY_TIMEOUT))
    assert f"❔ **{SERVER}** (arma3 sur {HOST}) — inconnu (hôte injoignable)" in listed

    handle = await product.fake.invoke_slash(
        "server status", {"server": SERVER}, user=viewer, locale="fr"
    )
    status = (await handle.message(REPLY_TIMEOUT)).embeds[0]
    assert status["description"] == f"**inconnu (hôte injoignable)** — l'hôte {HOST} ne répond pas"

    handle = await product.fake.invoke_slash("host", {}, user=viewer, locale="fr")
    other = (await handle.message(REPLY_TIMEOUT)).embeds[1]
    assert "injoignable depuis <t:" in str(other["description"])
    assert f"le moteur Docker de l'hôte {HOST} ne répond pas" in str(other["description"])
    shown = fields(other)
    assert shown["Moteur"] == "non communiqué" and shown["Serveurs (état inconnu)"] == SERVER


async def _engine(request: web.Request) -> web.Response:
    """The three calls of the host probe; anything else is a container it does not have."""
    answers: dict[str, Any] = {
        "version": {"Version": "20.10.24", "ApiVersion": "1.41"},
        "info": {"NCPU": 6, "MemTotal": 8 * 2**30},
        "containers/json": [],
    }
    path = request.path.split("/", 2)[-1]  # /v1.41/<path>
    if path in answers:
        return web.json_response(answers[path])
    return web.json_response({"message": f"No such container: {CONTAINER}"}, status=404)


async def test_the_host_answering_again_is_said_once(
    product: Product, channels: dict[str, FakeChannel]
) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _engine)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.UnixSite(runner, str(socket_path(product))).start()
        [back] = await until(lambda: titled(product, channels["alerts"], "is back"), WAIT, "back")
        assert str(back.embeds[0]["title"]).startswith(f"🔌 Host {HOST} is back after ")
        assert host_status(product).state is HostState.REACHABLE

        msg = await product.reply("host", user=product.cast.viewer)
        other = msg.embeds[1]
        assert other["title"] == f"🟢 {HOST}" and "reachable since <t:" in other["description"]
        shown = fields(other)
        assert shown["Engine"] == "Docker 20.10.24 · API 1.41" and shown["CPUs"] == "6"
        assert shown["Memory"] == "8.0 GiB (free: not reported)"
        assert shown["Disk"] == "not reported"

        await probes_answered(product, 3)
        assert len(titled(product, channels["alerts"], "is back")) == 1
        assert len(titled(product, channels["alerts"], "unreachable")) == 1
    finally:
        await runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            socket_path(product).unlink()


async def probes_answered(product: Product, count: int) -> None:
    """Until the registry probed box-2 `count` more times while it answers."""
    start = host_status(product).checked_at or 0.0
    seen: list[float] = []

    def more() -> bool:
        checked = host_status(product).checked_at or 0.0
        if checked > start and (not seen or checked > seen[-1]):
            seen.append(checked)
        return len(seen) >= count

    await until(more, WAIT, f"{count} probes")
    hub = product.running.channel_hub
    await until(lambda: hub.idle, WAIT, "alerts posted")
