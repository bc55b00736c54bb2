"""Bans the bot did not make survive on Minecraft: banned-players.json and banned-ips.json merge.

Real SQLite, the real supervisor and BanService, the fake Minecraft server process (vanilla's
ban files and console). What the game holds is read back from the game's own files.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from core.services.audit import Actor
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from data.repositories.bans import BanOrigin
from tests.fakes.minecraft_server import offline_uuid
from tests.integration.ban_env import BanWorld, eventually, minecraft_bans
from tests.integration.minecraft_env import add_minecraft, free_port, wait_link

S = ServerState
MOD = Actor(1001, "mod")
VANILLA_KEYS = {"uuid", "name", "created", "source", "expires", "reason"}


def entry(
    name: str, reason: str, expires: str = "forever", source: str = "Server"
) -> dict[str, str]:
    return {
        "uuid": offline_uuid(name),
        "name": name,
        "created": "2023-01-02 03:04:05 +0000",
        "source": source,
        "expires": expires,
        "reason": reason,
    }


def read(folder: Path, name: str) -> list[Any]:
    path = folder / name
    return list(json.loads(path.read_text())) if path.exists() else []


def names(folder: Path) -> set[str]:
    return {str(e["name"]) for e in read(folder, "banned-players.json") if isinstance(e, dict)}


def ips(folder: Path) -> set[str]:
    return {str(e["ip"]) for e in read(folder, "banned-ips.json") if isinstance(e, dict)}


async def running(server: ManagedServer) -> None:
    async with asyncio.timeout(30):
        assert await server.start() is S.RUNNING
    await wait_link(server, timeout=15)


def console(server: ManagedServer, line: str) -> None:
    assert server.handle is not None
    server.handle.write_console(line)


async def ledger(w: BanWorld, server: str) -> dict[str, tuple[BanOrigin, float | None, str]]:
    return {b.value: (b.origin, b.expires_at, b.reason) for b in await w.bans.list(server)}


async def test_minecraft_ban_files_made_before_languard_are_merged_imported_and_kept(
    tmp_path: Path,
) -> None:
    async with minecraft_bans(tmp_path) as w:
        server = await add_minecraft(w.env, "craft", port=free_port())
        folder = w.env.supervisor.folder_for("craft")
        (folder / "server.properties").write_text("online-mode=false\n")
        griefer = entry("Griefer", "griefing spawn")
        tempy = entry("Tempy", "cool off", expires="2099-01-01 00:00:00 +0000", source="Notch")
        gone = entry("Oldtimer", "expired", expires="2001-01-01 00:00:00 +0000")
        proxy = {
            "ip": "10.0.0.66",
            "created": "2023-01-02 03:04:05 +0000",
            "source": "Rcon",
            "expires": "forever",
            "reason": "proxy",
        }
        (folder / "banned-players.json").write_text(json.dumps([griefer, tempy, gone], indent=2))
        (folder / "banned-ips.json").write_text(json.dumps([proxy], indent=2))
        hacker = await w.bans.add(MOD, "Hacker", "perm", "fly hack", "craft")

        await running(server)
        players = read(folder, "banned-players.json")
        assert griefer in players and tempy in players and gone in players, "kept as they were"
        mine = [e for e in players if e["name"] == "Hacker"]
        assert len(mine) == 1 and set(mine[0]) == VANILLA_KEYS, "vanilla's format"
        assert mine[0]["uuid"] == offline_uuid("Hacker") and mine[0]["expires"] == "forever"
        assert read(folder, "banned-ips.json")[0] == proxy

        listed = await ledger(w, "craft")
        assert listed["Hacker"][0] is BanOrigin.LANGUARD
        assert listed["Griefer"] == (BanOrigin.GAME, None, "griefing spawn")
        assert listed["Tempy"][:2] == (BanOrigin.GAME, 4070908800.0)
        assert listed["10.0.0.66"] == (BanOrigin.GAME, None, "proxy")
        assert "Oldtimer" not in listed, "an expired ban is not imported"
        [tempy_ban] = [b for b in await w.bans.list("craft") if b.value == "Tempy"]
        assert tempy_ban.author_name == "Notch"

        # synced after the start: nothing the game held is pardoned
        await w.bans.sync_now(server.id)
        assert {"Griefer", "Tempy", "Hacker"} <= names(folder) and ips(folder) == {"10.0.0.66"}

        # a ban made in game (an op's console): recorded as found in game
        console(server, "ban Cheater x-ray")
        await eventually(lambda: _has(w, "craft", "Cheater"))
        assert (await ledger(w, "craft"))["Cheater"][:1] == (BanOrigin.GAME,)
        console(server, "ban-ip 10.0.0.77 another proxy")
        await eventually(lambda: "10.0.0.77" in ips(folder))
        await w.bans.sync_now(server.id)  # (as on a reconnect)
        assert (await ledger(w, "craft"))["10.0.0.77"][0] is BanOrigin.GAME

        # Languard lifts its own ban, and one it imported: both pardoned in game, nothing else
        await w.bans.remove(MOD, hacker.id)
        [imported] = [b for b in await w.bans.list("craft") if b.value == "Griefer"]
        await w.bans.remove(MOD, imported.id)
        await w.bans.sync_now(server.id)
        assert names(folder) >= {"Tempy", "Cheater", "Oldtimer"}
        assert not names(folder) & {"Hacker", "Griefer"}
        assert ips(folder) == {"10.0.0.66", "10.0.0.77"}


async def test_a_temporary_languard_ban_is_not_imported_again_as_a_game_ban(
    tmp_path: Path,
) -> None:
    async with minecraft_bans(tmp_path) as w:
        server = await add_minecraft(w.env, "craft", port=free_port())
        folder = w.env.supervisor.folder_for("craft")
        await running(server)
        ban = await w.bans.add(MOD, "Steve", "1d", "spam", "craft")
        assert "Steve" in names(folder), "the game wrote its own (permanent) entry"
        await w.bans.sync_now(server.id)
        assert [(b.id, b.origin) for b in await w.bans.list("craft")] == [
            (ban.id, BanOrigin.LANGUARD)
        ]
        w.clock.now += 86400 + 60
        assert [b.id for b in await w.bans.expire_due()] == [ban.id]
        assert "Steve" not in names(folder), "expired: pardoned in game"


async def _has(w: BanWorld, server: str, value: str) -> bool:
    return any(b.value == value for b in await w.bans.list(server))
