"""Minecraft for real: the supervisor runs the fake server process, the link drives it.

Console commands go through the FIFO and their replies come back through the log tailer;
RCON commands go over a real TCP socket to the fake's Source RCON server. What reached the
game is checked in the game's own files (banned-players.json, banned-ips.json, logs).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from core.errors import InvalidInput, NotFound, NotSupported, PortInUse, StartRefused
from core.events import (
    Chat,
    LogLines,
    PlayerBanned,
    PlayerJoined,
    PlayerKicked,
    PlayerLeft,
    RconStatus,
    ServerCrashed,
    ServerHung,
    ServerStateChanged,
)
from core.games.base import BanKind, GameBan, OnlinePlayer
from core.games.minecraft_link import MinecraftLink
from core.supervisor.process import identity_of
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from tests.fakes.minecraft_server import offline_uuid, read_properties
from tests.integration.minecraft_env import add_minecraft, free_port, minecraft_env, wait_link
from tests.integration.supervision import kill_groups, next_event

S = ServerState


def _bans(folder: Path, name: str, field: str) -> list[str]:
    path = folder / name
    return [str(e[field]) for e in json.loads(path.read_text())] if path.exists() else []


async def _link(server: ManagedServer) -> MinecraftLink:
    link = await wait_link(server)
    assert isinstance(link, MinecraftLink)
    return link


def _console(server: ManagedServer, line: str) -> None:
    assert server.handle is not None
    server.handle.write_console(line)


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_console_server_runs_and_is_driven_through_the_fifo(tmp_path: Path) -> None:
    async with minecraft_env(tmp_path) as env:
        port = free_port()
        server = await add_minecraft(env, "survival", port=port, stop_timeout=10.0)
        folder = env.supervisor.folder_for("survival")
        kinds = (PlayerJoined, PlayerLeft, PlayerKicked, PlayerBanned, Chat)
        with env.bus.subscribe(*kinds) as events:
            assert await server.start() is S.RUNNING
            properties = folder / "server.properties"
            assert stat.S_IMODE(properties.stat().st_mode) == 0o600
            written = read_properties(properties.read_text())
            assert written["server-port"] == str(port) and written["enable-rcon"] == "false"

            link = await _link(server)
            assert not link.uses_rcon and link.connected
            assert await link.players() == []

            _console(server, "fake.join Steve 10.1.2.3")
            joined = await next_event(events, PlayerJoined)
            assert (joined.name, joined.player_key, joined.ip) == ("Steve", "Steve", "10.1.2.3")
            assert joined.guid == offline_uuid("Steve")
            _console(server, "fake.join Alex")
            await next_event(events, PlayerJoined)
            players = await link.players()
            assert [p.name for p in players] == ["Steve", "Alex"]
            steve, alex = players
            assert steve.ip == "10.1.2.3" and steve.guid == offline_uuid("Steve")

            _console(server, "fake.chat Steve <b>hi</b> @everyone Alex joined the game")
            chat = await next_event(events, Chat)
            assert (chat.channel, chat.author) == ("chat", "Steve")
            assert chat.text == "<b>hi</b> @everyone Alex joined the game"

            await link.kick(alex, "be nice\nstop")
            kicked = await next_event(events, PlayerKicked)
            assert (kicked.name, kicked.reason) == ("Alex", "be nice stop")
            assert (await next_event(events, PlayerLeft)).name == "Alex"
            assert server.state is S.RUNNING  # "stop" in a reason stays text

            await link.ban(steve, GameBan(BanKind.NAME, "Steve", None, "griefing"))
            banned = await next_event(events, PlayerBanned)
            assert (banned.name, banned.reason) == ("Steve", "griefing")
            assert (await next_event(events, PlayerLeft)).name == "Steve"  # banned: kicked
            assert _bans(folder, "banned-players.json", "name") == ["Steve"]
            _console(server, "fake.join Steve")
            assert await link.players() == []
            refused = (folder / "console.log").read_text()
            assert "Steve (/127.0.0.1:" in refused and "You are banned from this server." in refused
            await link.remove_ban(GameBan(BanKind.NAME, "Steve", None))
            assert _bans(folder, "banned-players.json", "name") == []

            later = time.time() + 3600
            await link.add_ban(GameBan(BanKind.IP, "10.9.9.9", later, "vpn"))
            assert _bans(folder, "banned-ips.json", "ip") == ["10.9.9.9"]
            assert "vpn (until " in _bans(folder, "banned-ips.json", "reason")[0]
            await link.remove_ban(GameBan(BanKind.IP, "10.9.9.9", None))
            assert _bans(folder, "banned-ips.json", "ip") == []

            await link.say("hello\x00 world\n")
            assert "[Server] hello world" in (folder / "console.log").read_text()
            assert "/ban-ip" in await link.command("help")
            with pytest.raises(NotSupported):
                await link.load_mission("co10.Altis", None)
            with pytest.raises(NotFound):
                await link.kick(OnlinePlayer(key="Nobody", name="Nobody"), "")
            with pytest.raises(InvalidInput):
                await link.kick(OnlinePlayer(key="x\nstop", name="x"), "")
            with pytest.raises(InvalidInput):
                await link.add_ban(GameBan(BanKind.IP, "2001:db8::1", None))
            assert events.pending() == 0, "a refused join or a command raised no player event"

        started = time.monotonic()
        assert await server.stop() is S.STOPPED
        assert time.monotonic() - started < 5.0, "stop_timeout is 10 s: `stop` did it, no TERM"
        log = (folder / "console.log").read_text()
        assert "Stopping the server" in log and "All chunks are saved" in log
        assert server.link is None and not link.connected


async def test_rcon_server_is_driven_over_rcon(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "s3cret-Pw!"
    async with minecraft_env(tmp_path) as env:
        rcon_port = free_port()
        server = await add_minecraft(
            env, "creative", port=free_port(), rcon_password=password, rcon_port=rcon_port
        )
        folder = env.supervisor.folder_for("creative")
        with env.bus.subscribe(RconStatus, PlayerJoined, PlayerKicked, PlayerBanned) as events:
            assert await server.start() is S.RUNNING
            written = read_properties((folder / "server.properties").read_text())
            assert written["enable-rcon"] == "true" and written["rcon.port"] == str(rcon_port)
            assert written["rcon.password"] == password
            status = await next_event(events, RconStatus)
            assert status.connected and status.server == "creative"
            link = await _link(server)
            assert link.uses_rcon and link.connected

            _console(server, "fake.join Steve 10.0.0.7")
            await next_event(events, PlayerJoined)
            (steve,) = await link.players()
            assert "There are 1 of a max of 20" in await link.command("/list")

            await link.kick(steve, "bye")
            kicked = await next_event(events, PlayerKicked)  # from the `[Rcon: ...]` log line
            assert (kicked.name, kicked.reason) == ("Steve", "bye")
            await link.add_ban(GameBan(BanKind.NAME, "Steve", None, "x-ray"))
            assert (await next_event(events, PlayerBanned)).reason == "x-ray"
            assert _bans(folder, "banned-players.json", "name") == ["Steve"]
            await link.remove_ban(GameBan(BanKind.NAME, "Steve", None))
            assert _bans(folder, "banned-players.json", "name") == []
            log = (folder / "console.log").read_text()
            assert "[Rcon: Kicked Steve: bye]" in log and "[Rcon: Unbanned Steve]" in log

            # The game holds bans the bot did not make; the bot wants others, lifted some.
            await link.command("ban Griefer spam")
            await link.command("ban-ip 10.0.0.66 proxy")
            await link.command("ban Alex old")
            await link.command("ban Lifted old")
            await link.command("ban-ip 10.0.0.67 lifted")
            await link.sync_bans(
                [
                    GameBan(BanKind.NAME, "Alex", None, "old"),
                    GameBan(BanKind.NAME, "Steve", None, "again"),
                    GameBan(BanKind.IP, "10.1.1.1", None, "vpn"),
                    GameBan(BanKind.UUID, "00000000-0000-0000-0000-0000000000aa", None),
                    GameBan(BanKind.NAME, "Expired", time.time() - 5, ""),
                ],
                [GameBan(BanKind.NAME, "Lifted", None), GameBan(BanKind.IP, "10.0.0.67", None)],
            )
            assert sorted(_bans(folder, "banned-players.json", "name")) == [
                "Alex",
                "Griefer",
                "Steve",
            ], "Griefer is not the bot's: kept"
            assert sorted(_bans(folder, "banned-ips.json", "ip")) == ["10.0.0.66", "10.1.1.1"]
            found = {(b.kind, b.value) for b in await link.list_bans()}
            assert found == {
                (BanKind.NAME, "Alex"),
                (BanKind.NAME, "Griefer"),
                (BanKind.NAME, "Steve"),
                (BanKind.IP, "10.0.0.66"),
                (BanKind.IP, "10.1.1.1"),
            }

        await server.stop()
        assert not link.connected
    assert password not in caplog.text
    assert password not in repr(link) and password not in repr(server.profile)


async def test_a_hung_server_is_restarted_by_the_liveness_probe(tmp_path: Path) -> None:
    async with minecraft_env(tmp_path, link_timeout=1.5) as env:
        server = await add_minecraft(
            env, "hang", port=free_port(), liveness_interval=0.3, liveness_failures=2
        )
        folder = env.supervisor.folder_for("hang")
        with env.bus.subscribe(ServerHung, ServerStateChanged, ServerCrashed, LogLines) as events:
            assert await server.start() is S.RUNNING
            assert server.handle is not None
            first = server.handle.pid
            link = await _link(server)
            await link.probe()
            _console(server, "fake.hang")
            hung = await next_event(events, ServerHung, timeout=15)
            assert "liveness" in hung.reason
            await _until(lambda: server.state is S.RUNNING and server.handle.pid != first, 20)
            seen = [events.get_nowait() for _ in range(events.pending())]
        assert not [e for e in seen if isinstance(e, ServerCrashed)], "a hang is not a crash"
        assert identity_of(first) is None
        assert list((folder / "logs").glob("*.log.gz")), "the second start rolled latest.log"
        logged = [
            line.text
            for e in seen
            if isinstance(e, LogLines) and e.source == "console"
            for line in e.lines
        ]
        assert sum("Done (" in text for text in logged) >= 1
        await (await _link(server)).probe()


async def test_a_crash_is_reported_with_its_exit_code(tmp_path: Path) -> None:
    async with minecraft_env(tmp_path) as env:
        server = await add_minecraft(env, "crashy", port=free_port(), auto_restart=False)
        with env.bus.subscribe(ServerCrashed) as events:
            await server.start()
            _console(server, "fake.crash 3")
            crash = await next_event(events, ServerCrashed)
        assert crash.exit_code == 3 and crash.restart_in_s is None
        assert any("unexpected exception" in line for line in crash.last_lines)


async def test_adoption_keeps_the_console_working(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    async with minecraft_env(tmp_path, key=key) as env:
        server = await add_minecraft(env, "kept", port=free_port())
        await server.start()
        await _link(server)
        assert server.handle is not None
        pid, server_id = server.handle.pid, server.id
        await env.supervisor.close()
        env.supervisor._servers.clear()
    try:
        assert identity_of(pid) is not None, "closing the bot must not stop the game"
        async with minecraft_env(tmp_path, key=key) as env:
            adopted = env.supervisor.get(server_id)
            assert adopted.state is S.RUNNING
            assert adopted.handle is not None and adopted.handle.adopted
            link = await _link(adopted)
            with env.bus.subscribe(PlayerJoined) as events:
                _console(adopted, "fake.join Steve")
                assert (await next_event(events, PlayerJoined)).name == "Steve"
            assert [p.name for p in await link.players()] == ["Steve"]
            assert await adopted.stop() is S.STOPPED
            assert identity_of(pid) is None
    finally:
        kill_groups([pid])


async def test_starts_are_refused_before_anything_runs(tmp_path: Path) -> None:
    async with minecraft_env(tmp_path) as env:
        no_eula = await add_minecraft(env, "noeula", port=free_port(), eula=False)
        with pytest.raises(StartRefused, match="eula=true"):
            await no_eula.start()
        assert no_eula.state is S.STOPPED and no_eula.handle is None

        no_jar = await add_minecraft(env, "nojar", port=free_port(), jar=False)
        with pytest.raises(StartRefused, match=r"server\.jar"):
            await no_jar.start()
        assert no_jar.state is S.STOPPED

        with socket.socket() as taken:
            taken.bind(("0.0.0.0", 0))
            taken.listen()
            busy = await add_minecraft(env, "busy", port=taken.getsockname()[1])
            with pytest.raises(PortInUse):
                await busy.start()
        assert busy.state is S.STOPPED
