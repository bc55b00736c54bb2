"""Bans the bot did not make survive on Arma 3: the ledger merges, it never wipes.

Real SQLite, the real supervisor and BanService, the fake `arma3server_x64` process with
BattlEye RCon over UDP on loopback. "Another tool" is berconpy, a third-party RCon client,
logged in beside the bot. What the game holds is read back from the game (`fake.state`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from berconpy import RCONClient

from core.events import RconStatus
from core.games.base import BanKind, OnlinePlayer
from core.services.audit import Actor
from core.services.ban_targets import BanTarget
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from data.repositories.bans import BanOrigin
from tests.integration.arma3_env import (
    RCON_PASSWORD,
    add_arma3_server,
    fake_state,
    free_arma_ports,
    layout_of,
    wait_for,
    wait_for_link,
)
from tests.integration.ban_env import BanWorld, arma3_bans, eventually

S = ServerState
MOD = Actor(1001, "mod")
GUID_BOB = "80a5885ebe2420bab5e158a310fcbc7d"
GUID_CAROL = "331e64806b30277076963283eea16438"
GUID_DAVE = "c20b9665b392c4c7633d14b151a4deb3"
GUID_EVE = "20446897121fafa82c1069ed07820f27"
GUID_LONG = "0123456789abcdef0123456789abcdef"
GUID_ZED = "fedcba9876543210fedcba9876543210"


async def add_server(w: BanWorld, name: str, **knobs: Any) -> tuple[ManagedServer, int]:
    port, rcon_port = free_arma_ports()
    server = await add_arma3_server(
        w.env, name, port=port, rcon_port=rcon_port, knobs=knobs or None
    )
    return server, rcon_port


async def running(server: ManagedServer) -> None:
    async with asyncio.timeout(30):
        assert await server.start() is S.RUNNING
    await wait_for_link(server, timeout=15)


async def game_bans(server: ManagedServer) -> dict[str, tuple[int, str]]:
    """target -> (expiry or -1, reason), as the game holds them."""
    state = await fake_state(server)
    return {b["target"]: (b["expires"], b["reason"]) for b in state["bans"]}


async def join(server: ManagedServer, name: str, guid: str, ip: str) -> str:
    link = await wait_for_link(server)
    async with asyncio.timeout(10):
        return str(await link.command(f"fake.join {name} {guid} {ip}"))


@asynccontextmanager
async def other_tool(rcon_port: int) -> AsyncIterator[RCONClient]:
    """berconpy logged in to the game's BattlEye RCon, as an admin's own tool would be."""
    client = RCONClient()
    async with asyncio.timeout(15), client.connect("127.0.0.1", rcon_port, RCON_PASSWORD):
        yield client


async def ledger(w: BanWorld, server: str) -> dict[str, tuple[BanOrigin, float | None, str]]:
    """Active bans of a server in the ledger: value -> (origin, expires_at, reason)."""
    return {b.value: (b.origin, b.expires_at, b.reason) for b in await w.bans.list(server)}


# -- first sight: a bans.txt made before Languard --------------------------------------------


async def test_bans_in_bans_txt_before_languard_survive_a_start_and_are_listed(
    tmp_path: Path,
) -> None:
    async with arma3_bans(tmp_path) as w:
        # RCon comes up 1 s after BattlEye read bans.txt: the file is seen as Languard left it
        server, _ = await add_server(w, "alpha", rcon_delay=1.0)
        bans_txt = layout_of(w.env, server).bans_txt
        bans_txt.parent.mkdir(parents=True, exist_ok=True)
        future = int(time.time()) + 86400
        before = [
            f"{GUID_CAROL} -1 Cheating [admin][18.07.15 13:38:14]".encode(),
            f"10.20.30.40 {future} vpn abuse".encode(),
            b"this is not a ban line",
            b"2001:db8::5 -1 an IPv6 address is no BattlEye ban",
            f"{GUID_DAVE} {int(time.time()) - 60} expired a minute ago".encode(),
            f"{GUID_LONG} -1 ".encode() + b"x" * 5000,
            b"\xff\xfe\x00binary\x01junk\x7f",
            f"{GUID_ZED.upper()} -1 Upper-case GUID, CRLF line\r".encode(),
        ]
        bans_txt.write_bytes(b"\n".join(before) + b"\n")
        await w.bans.add(MOD, GUID_BOB, "perm", "aimbot", "alpha")

        async with asyncio.timeout(15):
            assert await server.start(wait=False) is S.STARTING
        lines = bans_txt.read_bytes().split(b"\n")
        for line in before:
            assert line in lines, f"{line[:60]!r} was dropped from bans.txt"
        assert f"{GUID_BOB} -1 aimbot".encode() in lines

        listed = await ledger(w, "alpha")
        assert listed[GUID_BOB][0] is BanOrigin.LANGUARD
        assert listed[GUID_CAROL] == (
            BanOrigin.GAME,
            None,
            "Cheating [admin][18.07.15 13:38:14]",
        )
        assert listed["10.20.30.40"] == (BanOrigin.GAME, float(future), "vpn abuse")
        assert listed[GUID_LONG][0] is BanOrigin.GAME and listed[GUID_LONG][2] == "x" * 200
        assert listed[GUID_ZED][0] is BanOrigin.GAME
        assert GUID_DAVE not in listed, "an expired ban is not imported"
        assert set(listed) == {GUID_BOB, GUID_CAROL, "10.20.30.40", GUID_LONG, GUID_ZED}
        [imported] = await w.audited("bans.import")
        assert imported.server_id == server.id and imported.arguments["count"] == 4

        # running, synced over RCon: the game still holds every ban, and enforces them
        await wait_for(lambda: server.state is S.RUNNING, timeout=20)
        await wait_for_link(server, timeout=15)
        await w.bans.sync_now(server.id)
        held = await game_bans(server)
        assert {GUID_BOB, GUID_CAROL, "10.20.30.40", GUID_LONG, GUID_ZED} <= set(held)
        assert await join(server, "Carol", GUID_CAROL, "10.0.0.3") == "banned"
        assert await join(server, "Vpn", GUID_EVE, "10.20.30.40") == "banned"
        assert len(await w.audited("bans.import")) == 1, "nothing new: nothing imported twice"

        # a second start: nothing is imported again, nothing is dropped
        async with asyncio.timeout(20):
            assert await server.stop() is S.STOPPED
        await running(server)
        assert len(await w.audited("bans.import")) == 1
        assert set(await ledger(w, "alpha")) == set(listed)
        await w.bans.sync_now(server.id)
        assert {GUID_BOB, GUID_CAROL, "10.20.30.40", GUID_LONG, GUID_ZED} <= set(
            await game_bans(server)
        )


async def test_a_stopped_server_s_bans_txt_is_imported_when_the_bot_starts(
    tmp_path: Path,
) -> None:
    async with arma3_bans(tmp_path) as w:
        server, _ = await add_server(w, "alpha")
        bans_txt = layout_of(w.env, server).bans_txt
        bans_txt.parent.mkdir(parents=True, exist_ok=True)
        bans_txt.write_text(f"{GUID_CAROL} -1 older than the bot\n")
        await w.bans.close()
        await w.bans.start()  # the bot (re)starts: first sight of the server's files
        assert await ledger(w, "alpha") == {
            GUID_CAROL: (BanOrigin.GAME, None, "older than the bot")
        }
        assert server.state is S.STOPPED and server.handle is None, "nothing was started"
        assert bans_txt.read_text() == f"{GUID_CAROL} -1 older than the bot\n"


# -- while running: another RCon tool, and bans made in game --------------------------------


async def test_a_ban_added_with_another_rcon_tool_is_imported_and_kept_on_reconnect(
    tmp_path: Path,
) -> None:
    async with arma3_bans(tmp_path) as w:
        server, rcon_port = await add_server(w, "alpha")
        await running(server)
        await w.bans.add(MOD, GUID_BOB, "perm", "aimbot", "alpha")
        async with other_tool(rcon_port) as tool:
            assert await tool.send_command(f"addBan {GUID_CAROL} 0 banned by hand") == ""
            assert await tool.send_command("addBan 10.1.2.3 120 two hours") == ""
        assert {GUID_BOB, GUID_CAROL, "10.1.2.3"} <= set(await game_bans(server))

        # the link reconnects (as after a network blip): the game is synced and imported
        w.env.bus.publish(RconStatus(server_id=server.id, server="alpha", connected=True))
        await eventually(lambda: _has(w, "alpha", GUID_CAROL))
        await w.bans.sync_now(server.id)
        held = await game_bans(server)
        assert held[GUID_CAROL] == (-1, "banned by hand"), "never removed"
        assert "10.1.2.3" in held and GUID_BOB in held
        listed = await ledger(w, "alpha")
        assert listed[GUID_CAROL] == (BanOrigin.GAME, None, "banned by hand")
        origin, expires, reason = listed["10.1.2.3"]
        assert origin is BanOrigin.GAME and reason == "two hours"
        assert expires is not None and abs(expires - (time.time() + 7200)) < 300

        # the bot restarts (a new BanService): nothing is removed, nothing imported twice
        await w.bans.close()
        await w.bans.start()
        await w.bans.sync_now(server.id)
        assert {GUID_BOB, GUID_CAROL, "10.1.2.3"} <= set(await game_bans(server))
        assert len(await w.bans.list("alpha")) == 3


async def test_a_ban_made_in_game_is_recorded_and_languard_s_own_is_not_recorded_twice(
    tmp_path: Path,
) -> None:
    async with arma3_bans(tmp_path) as w:
        server, rcon_port = await add_server(w, "alpha")
        await running(server)
        assert await join(server, "Wallhacker", GUID_DAVE, "10.0.0.4") == "slot 0"
        async with other_tool(rcon_port) as tool:
            assert await tool.send_command("ban 0 0 wallhack") == ""
        await eventually(lambda: _has(w, "alpha", GUID_DAVE))
        listed = await ledger(w, "alpha")
        assert listed[GUID_DAVE] == (BanOrigin.GAME, None, "wallhack")

        # a ban Languard makes on an online player (the game kicks: PlayerBanned) is its own
        assert await join(server, "Teamkiller", GUID_EVE, "10.0.0.5") == "slot 0"
        link = await wait_for_link(server)
        [player] = [p for p in await link.players() if p.guid == GUID_EVE]
        online = OnlinePlayer(player.key, player.name, guid=GUID_EVE)
        target = BanTarget(BanKind.GUID, GUID_EVE)
        ban = await w.bans.create(MOD, target, None, "tk", server, online=(server.id, online))
        await w.bans.sync_now(server.id)
        eve = [b for b in await w.bans.list("alpha") if b.value == GUID_EVE]
        assert [(b.id, b.origin) for b in eve] == [(ban.id, BanOrigin.LANGUARD)]


# -- removal: only what Languard recorded and lifted -----------------------------------------


async def test_only_bans_languard_lifted_leave_the_game(tmp_path: Path) -> None:
    async with arma3_bans(tmp_path) as w:
        server, rcon_port = await add_server(w, "alpha")
        await running(server)
        ours = await w.bans.add(MOD, GUID_BOB, "perm", "aimbot", "alpha")
        async with other_tool(rcon_port) as tool:
            await tool.send_command(f"addBan {GUID_CAROL} 0 by hand")
            await tool.send_command(f"addBan {GUID_DAVE} 0 also by hand")
        await w.bans.sync_now(server.id)
        listed = {b.value: b for b in await w.bans.list("alpha")}
        assert listed[GUID_CAROL].origin is BanOrigin.GAME

        # Languard's own ban, lifted: gone from the game
        await w.bans.remove(MOD, ours.id)
        held = await game_bans(server)
        assert GUID_BOB not in held and {GUID_CAROL, GUID_DAVE} <= set(held)
        # an imported ban lifted through Languard is Languard's to remove too
        await w.bans.remove(MOD, listed[GUID_CAROL].id)
        held = await game_bans(server)
        assert GUID_CAROL not in held and GUID_DAVE in held
        await w.bans.sync_now(server.id)
        assert set(await game_bans(server)) == {GUID_DAVE}

        # banned again by hand after Languard lifted it: a new game-side ban, kept
        async with other_tool(rcon_port) as tool:
            await tool.send_command(f"addBan {GUID_BOB} 0 back again")
        await w.bans.sync_now(server.id)
        assert (await game_bans(server))[GUID_BOB] == (-1, "back again")
        again = [b for b in await w.bans.list("alpha") if b.value == GUID_BOB]
        assert [(b.origin, b.reason) for b in again] == [(BanOrigin.GAME, "back again")]


async def test_a_ban_lifted_while_the_server_is_stopped_leaves_bans_txt_at_the_next_start(
    tmp_path: Path,
) -> None:
    async with arma3_bans(tmp_path) as w:
        server, rcon_port = await add_server(w, "alpha")
        await running(server)
        ours = await w.bans.add(MOD, GUID_BOB, "1d", "cool off", "alpha")
        async with other_tool(rcon_port) as tool:
            await tool.send_command(f"addBan {GUID_CAROL} 0 by hand")
        async with asyncio.timeout(20):
            assert await server.stop() is S.STOPPED
        bans_txt = layout_of(w.env, server).bans_txt
        assert GUID_CAROL.encode() in bans_txt.read_bytes(), "the game wrote it to its file"

        await w.bans.remove(MOD, ours.id)  # nothing running to take it from
        await running(server)
        text = bans_txt.read_text()
        assert GUID_BOB not in text and f"{GUID_CAROL} -1 by hand" in text
        await w.bans.sync_now(server.id)
        assert set(await game_bans(server)) == {GUID_CAROL}
        assert await join(server, "Bob", GUID_BOB, "10.0.0.2") == "slot 0"


# -- hostile files ----------------------------------------------------------------------------


async def test_a_hostile_bans_txt_is_read_within_bounds_and_kept(tmp_path: Path) -> None:
    async with arma3_bans(tmp_path) as w:
        server, _ = await add_server(w, "alpha", rcon_delay=1.0)
        bans_txt = layout_of(w.env, server).bans_txt
        bans_txt.parent.mkdir(parents=True, exist_ok=True)
        many = [f"{n:032x} -1 ban number {n}".encode() for n in range(3000)]
        hostile = [
            b"\x00" * 70000,  # one very long line of NULs
            bytes(b for b in range(256) if b != 0x0A),  # every byte but the newline
            b"%s%n{0}\x1b[31m ' OR 1=1 --",
        ]
        content = b"\n".join(many + hostile) + b"\n"
        bans_txt.write_bytes(content)
        async with asyncio.timeout(30):
            assert await server.start(wait=False) is S.STARTING
        lines = set(bans_txt.read_bytes().split(b"\n"))
        assert all(line in lines for line in many + hostile), "nothing dropped"
        imported = len(await w.bans.list("alpha", limit=500))
        assert imported == 500  # (the list is capped; the ledger holds more)
        count = await w.env.db.fetchval("SELECT COUNT(*) FROM bans WHERE origin = 'game'")
        assert 0 < count <= 3000
        await wait_for(lambda: server.state is S.RUNNING, timeout=30)

    async with arma3_bans(tmp_path / "huge") as w:
        server, _ = await add_server(w, "bravo", rcon_delay=1.0)
        bans_txt = layout_of(w.env, server).bans_txt
        bans_txt.parent.mkdir(parents=True, exist_ok=True)
        junk = (b"\x80not a ban at all " * 64 + b"\n") * 9000  # ~10 MB, past the read cap
        content = f"{GUID_CAROL} -1 first line\n".encode() + junk
        bans_txt.write_bytes(content)
        await w.bans.add(MOD, GUID_BOB, "perm", "aimbot", "bravo")
        async with asyncio.timeout(30):
            assert await server.start(wait=False) is S.STARTING
        assert bans_txt.read_bytes() == content, "too big to merge: left exactly as it was"
        await wait_for(lambda: server.state is S.RUNNING, timeout=30)
        await wait_for_link(server, timeout=15)
        await w.bans.sync_now(server.id)
        held = await game_bans(server)
        assert {GUID_BOB, GUID_CAROL} <= set(held), "the bot's ban still reached the game"


async def _has(w: BanWorld, server: str, value: str) -> bool:
    return any(b.value == value for b in await w.bans.list(server))
