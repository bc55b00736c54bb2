"""Arma 3 for real: the supervisor runs the fake `arma3server_x64` through the Arma 3 profile.

Real SQLite, real processes, real UDP (the game port and BattlEye RCon on loopback).
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import stat
import time
from pathlib import Path

import pytest

from core.errors import ConfigWriteError, InvalidInput, NotRunning, NotSupported
from core.events import (
    Chat,
    EventBus,
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
from core.fsutil import atomic_write
from core.games.arma3_config import parse_bans_txt
from core.games.arma3_config_parser import parse_config
from core.games.arma3_layout import Arma3Layout
from core.games.arma3_link import Arma3Link, RconOptions
from core.games.base import BanKind, GameBan, OnlinePlayer, ServerContext
from core.rcon import BattlEyeClient, RconTimeout
from core.rcon.battleye_server import AdminLoggedIn
from core.supervisor.states import ServerState
from tests.fakes.arma3_bin import write_fake_arma3
from tests.fakes.battleye_server import DEFAULT_PLAYERS, FakeBattlEyeServer, default_handler
from tests.integration.arma3_env import (
    RCON_PASSWORD,
    add_arma3_server,
    arma3_supervised,
    fake_state,
    fast_profile,
    free_arma_ports,
    game_log_text,
    layout_of,
    wait_for_link,
)
from tests.integration.supervision import kill_groups, next_event

S = ServerState
G1 = "80a5885ebe2420bab5e158a310fcbc7d"
G2 = "20446897121fafa82c1069ed07820f27"
G3 = "331e64806b30277076963283eea16438"
G4 = "c20b9665b392c4c7633d14b151a4deb3"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def console_text(folder: Path) -> str:
    return Arma3Layout.of(folder).console_log.read_text()


async def test_running_only_after_rcon_login_then_stopped_by_shutdown(tmp_path: Path) -> None:
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_arma3_server(
            env, "alpha", hostname='Alpha "One" };', stop_timeout=10.0, knobs={"rcon_delay": 0.8}
        )
        layout = layout_of(env, server)
        with env.bus.subscribe(LogLines, RconStatus) as events:
            began = time.monotonic()
            assert await server.start() is S.RUNNING
            took = time.monotonic() - began
            rpt = game_log_text(env, server)
            assert "RCon listening" in rpt and "RCon admin #0 (127.0.0.1:" in rpt
            assert took >= 0.8, "ready before BattlEye RCon listened"

            assert mode(layout.server_cfg) == 0o600
            active = list(layout.battleye.glob("beserver_x64_active_*.cfg"))
            assert len(active) == 1 and mode(active[0]) == 0o600
            assert mode(layout.basic_cfg) == 0o644
            assert parse_config(layout.server_cfg.read_text()).get("hostname") == 'Alpha "One" };'
            assert (await fake_state(server))["hostname"] == 'Alpha "One" };'

            seen: dict[str, list[str]] = {"console": []}
            statuses: list[RconStatus] = []
            async with asyncio.timeout(10):
                while not statuses or not all(
                    any("Host identity" in t for t in v) for v in seen.values()
                ):
                    event = await events.get()
                    if isinstance(event, LogLines):
                        assert event.source == "console", "Linux: the log is stdout, no RPT"
                        seen[event.source] += [line.text for line in event.lines]
                    elif isinstance(event, RconStatus):
                        statuses.append(event)
            assert statuses[0].connected
            assert any(t.startswith("== ") for t in seen["console"])
            assert layout.newest_rpt() is None, "the Linux server writes no RPT"

        handle = server.handle
        assert handle is not None
        exited = handle.watch()
        began = time.monotonic()
        assert await server.stop() is S.STOPPED
        took = time.monotonic() - began
        assert exited.result().exit_code == 0
        assert took < 3.0, f"stop took {took:.1f} s: #shutdown was not taken"
        rpt = game_log_text(env, server)
        assert "Shutting down: #shutdown over RCon" in rpt
        assert "SIGTERM" not in rpt
        assert "Shutting down: #shutdown over RCon" in layout.console_log.read_text()
        assert not list(layout.battleye.glob("*_active_*.cfg"))


async def test_players_join_chat_and_get_kicked(tmp_path: Path) -> None:
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_arma3_server(env, "alpha")
        await server.start()
        link = await wait_for_link(server)
        with env.bus.subscribe(PlayerJoined, PlayerLeft, PlayerKicked, Chat) as events:
            assert await link.command(f"fake.join Bob the (Builder) {G1} 10.0.0.5") == "slot 0"
            joined = await next_event(events, PlayerJoined)
            assert (joined.name, joined.player_key, joined.guid, joined.ip) == (
                "Bob the (Builder)",
                "0",
                G1,
                "10.0.0.5",
            )
            players = await link.players()
            assert [(p.key, p.name, p.guid, p.ip) for p in players] == [
                ("0", "Bob the (Builder)", G1, "10.0.0.5")
            ]

            ctx = await env.supervisor.context(server.id, "alpha")
            rcon_port = server.profile.ports(ctx)[-1].port
            async with BattlEyeClient("127.0.0.1", rcon_port, RCON_PASSWORD) as other:
                await other.command("fake.chat 0 Side hello: world")
            chat = await next_event(events, Chat)
            assert (chat.channel, chat.author, chat.text) == (
                "Side",
                "Bob the (Builder)",
                "hello: world",
            )

            await link.say("Welcome\nto #shutdown")
            chat = await next_event(events, Chat)
            assert (chat.author, chat.text) == ("RCon admin", "Welcome to #shutdown")
            chat_log = env.supervisor.folder_for("alpha") / "chat.log"
            assert chat_log.read_text() == "Global\tWelcome to #shutdown\n"

            await link.kick(players[0], "AFK\ntoo long")
            kicked = await next_event(events, PlayerKicked)
            assert (kicked.name, kicked.reason, kicked.player_key, kicked.guid) == (
                "Bob the (Builder)",
                "AFK too long",
                "0",
                G1,
            )
            left = await next_event(events, PlayerLeft)
            assert left.player_key == "0"
            assert await link.players() == []
            assert "kicked off by BattlEye: Admin Kick (AFK too long)" in game_log_text(env, server)
        assert server.state is S.RUNNING
        await server.stop()


async def test_bans_reach_the_game_file_and_list(tmp_path: Path) -> None:
    now = time.time()
    stored = [
        GameBan(BanKind.GUID, G1, None, "cheating"),
        GameBan(BanKind.IP, "10.9.8.7", now + 3600, "spam"),
        GameBan(BanKind.NAME, "steve", None, "not an Arma ban"),
    ]

    async def bans_for(server_id: int) -> list[GameBan]:
        return stored

    async with arma3_supervised(tmp_path) as (env, _):
        env.supervisor.bans_provider = bans_for
        server = await add_arma3_server(env, "alpha")
        await server.start()
        bans_txt = layout_of(env, server).bans_txt
        assert [(b.target, b.reason) for b in parse_bans_txt(bans_txt.read_text())] == [
            (G1, "cheating"),
            ("10.9.8.7", "spam"),
        ]
        link = await wait_for_link(server)
        with env.bus.subscribe(PlayerBanned, PlayerJoined) as events:
            assert await link.command(f"fake.join Cheater {G1} 10.0.0.1") == "banned"
            banned = await next_event(events, PlayerBanned)
            assert (banned.name, banned.reason, banned.guid) == ("Cheater", "cheating", G1)
            assert await link.command(f"fake.join Spammer {G2} 10.9.8.7") == "banned"
            assert (await next_event(events, PlayerBanned)).reason == "spam"
            assert await link.players() == []

            assert await link.command(f"fake.join Teamkiller {G4} 10.0.0.4") == "slot 0"
            await next_event(events, PlayerJoined)
            (player,) = await link.players()
            await link.ban(player, GameBan(BanKind.GUID, G4, None, "tk"))
            banned = await next_event(events, PlayerBanned)
            assert (banned.name, banned.reason, banned.player_key) == ("Teamkiller", "tk", "0")
            assert await link.players() == []

        await link.add_ban(GameBan(BanKind.GUID, G2, time.time() + 7200, "two hours"))
        await link.remove_ban(GameBan(BanKind.GUID, G1, None))
        state = await fake_state(server)
        targets = {b["target"]: b for b in state["bans"]}
        assert set(targets) == {"10.9.8.7", G4, G2}
        assert 7100 < targets[G2]["expires"] - time.time() <= 7200
        assert targets[G4]["expires"] == -1

        listed = {b.value: b for b in await link.list_bans()}
        assert set(listed) == {"10.9.8.7", G4, G2}
        assert listed[G4].expires_at is None and listed[G4].reason == "tk"
        assert listed[G2].expires_at is not None

        # a sync adds what the ledger holds, drops only what it lifted, keeps the rest
        lifted = [GameBan(BanKind.GUID, G2, None)]
        await link.sync_bans(
            [GameBan(BanKind.GUID, G3, None, "sync"), stored[1], stored[2]], lifted
        )
        state = await fake_state(server)
        assert sorted(b["target"] for b in state["bans"]) == sorted(["10.9.8.7", G3, G4])
        assert sorted(b.target for b in parse_bans_txt(bans_txt.read_text())) == sorted(
            ["10.9.8.7", G3, G4]
        )
        await server.stop()


async def test_mission_rotation_and_load_mission(tmp_path: Path) -> None:
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_arma3_server(
            env,
            "alpha",
            difficulty="Recruit",
            mission_rotation=[
                {"template": "co10_Escape.Altis", "difficulty": "Veteran"},
                "MP_Marksmen_01.Altis",
            ],
        )
        await server.start()
        missions = parse_config(layout_of(env, server).server_cfg.read_text()).child("Missions")
        assert missions is not None
        assert [(m.get("template"), m.get("difficulty")) for m in missions.classes()] == [
            ("co10_Escape.Altis", "Veteran"),
            ("MP_Marksmen_01.Altis", "Recruit"),
        ]
        state = await fake_state(server)
        assert (state["mission"], state["difficulty"]) == ("co10_Escape.Altis", "Veteran")

        link = await wait_for_link(server)
        await link.load_mission("MP_Marksmen_01.Altis.pbo", "veteran")
        state = await fake_state(server)
        assert (state["mission"], state["difficulty"]) == ("MP_Marksmen_01.Altis", "Veteran")
        assert "Mission MP_Marksmen_01.Altis read from bank." in game_log_text(env, server)
        with pytest.raises(InvalidInput):
            await link.load_mission("../evil.Altis", None)
        with pytest.raises(InvalidInput):
            await link.load_mission("a.Altis; #shutdown", None)
        assert server.state is S.RUNNING
        await server.stop()


async def test_start_is_refused_without_an_rcon_password(tmp_path: Path) -> None:
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_arma3_server(env, "alpha", secrets={"password": "join"})
        with pytest.raises(ConfigWriteError, match="rcon_password"):
            await server.start()
        assert server.state is S.STOPPED and server.handle is None


async def test_a_stale_active_cfg_keeps_rcon_down_unless_removed(tmp_path: Path) -> None:
    profile = fast_profile(write_fake_arma3(tmp_path / "bin"))
    port, rcon_port = free_arma_ports()
    ctx = ServerContext(
        server_id=1,
        name="bare",
        folder=tmp_path / "bare",
        settings={"port": port, "rcon_port": rcon_port},
        secrets={"rcon_password": RCON_PASSWORD},
    )
    for config in profile.files(ctx):
        atomic_write(config.path, config.content, mode=0o600 if config.secret else 0o644)
    stale = tmp_path / "bare" / "battleye" / "beserver_x64_active_0badc0de.cfg"
    stale.write_text("RConPassword old\nRConPort 1\n")
    spec = profile.launch(ctx)  # no prepare(): the stale file stays
    proc = await asyncio.create_subprocess_exec(
        *spec.argv,
        cwd=spec.cwd,
        env={**os.environ, **spec.env},
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        printed = b""
        async with asyncio.timeout(10):
            while b"Host identity created." not in (line := await proc.stdout.readline()):
                assert line, "the fake exited"
                printed += line
        with pytest.raises(RconTimeout):
            async with BattlEyeClient(
                "127.0.0.1", rcon_port, RCON_PASSWORD, timeout=0.3, retries=2
            ):
                pass
        assert b"RCon disabled: stale config beserver_x64_active_0badc0de.cfg" in printed
    finally:
        kill_groups([proc.pid])
        await proc.wait()

    async with arma3_supervised(tmp_path / "supervised") as (env, _):
        server = await add_arma3_server(env, "alpha", backoff_base=1.0)
        await server.start()
        battleye = layout_of(env, server).battleye
        link = await wait_for_link(server)
        with env.bus.subscribe(ServerCrashed, ServerStateChanged) as events:
            await link.command("fake.crash 3")
            crash = await next_event(events, ServerCrashed)
            assert crash.exit_code == 3 and crash.restart_in_s is not None
            left_behind = list(battleye.glob("beserver_x64_active_*.cfg"))
            assert len(left_behind) == 1, "a hard exit leaves the active cfg"
            while (await next_event(events, ServerStateChanged)).new is not S.RUNNING:
                pass
        assert not left_behind[0].exists()
        assert (await fake_state(server))["pid"] == server.handle.pid  # type: ignore[union-attr]
        await server.stop()


async def test_a_hung_game_is_restarted_and_its_stdout_log_goes_on(tmp_path: Path) -> None:
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_arma3_server(
            env,
            "alpha",
            liveness_interval=0.3,
            liveness_failures=2,
            stop_timeout=1.5,
            term_timeout=2.0,
        )
        layout = layout_of(env, server)
        texts: list[str] = []
        with env.bus.subscribe(ServerHung, ServerStateChanged, LogLines) as events:
            await server.start()
            assert server.handle is not None
            first_pid = server.handle.pid
            link = await wait_for_link(server)
            await link.command("fake.hang")
            hung: ServerHung | None = None
            restarted = False

            def switched() -> bool:
                hang = next((i for i, t in enumerate(texts) if "Fake hang" in t), None)
                later = texts[hang:] if hang is not None else []
                header = next((i for i, t in enumerate(later) if t.startswith("=====")), None)
                return header is not None and any("Host identity" in t for t in later[header:])

            async with asyncio.timeout(25):
                while not (hung and restarted and switched()):
                    event = await events.get()
                    if isinstance(event, LogLines):
                        assert event.source == "console"
                        texts.extend(line.text for line in event.lines)
                    elif isinstance(event, ServerHung):
                        hung = event
                    elif isinstance(event, ServerStateChanged) and hung is not None:
                        restarted = restarted or event.new is S.RUNNING
        assert hung is not None and "liveness" in hung.reason
        assert server.handle is not None and server.handle.pid != first_pid
        assert layout.newest_rpt() is None
        assert sum("Fake hang: RCon stops answering" in t for t in texts) == 1, "once each"
        assert "Shutting down: received SIGTERM" in layout.console_log.read_text()
        assert (await fake_state(server))["rpt"] is None
        await server.stop()


async def test_the_link_maps_console_lines_errors_and_reconnects() -> None:
    bus = EventBus()
    fake = FakeBattlEyeServer(
        RCON_PASSWORD, handler=lambda command: DEFAULT_PLAYERS if command == "players" else ""
    )
    await fake.start()
    options = RconOptions(timeout=0.2, retries=1, keepalive_interval=0.3, guid_wait=0.2)
    with bus.subscribe(PlayerJoined, PlayerLeft, PlayerBanned, RconStatus) as events:
        link = await Arma3Link.connect(
            host="127.0.0.1",
            port=fake.port,
            password=RCON_PASSWORD,
            bus=bus,
            server_id=7,
            server="alpha",
            options=options,
        )
        try:
            assert (await next_event(events, RconStatus)).connected
            fake.broadcast("Player #0 Bravo17 disconnected")  # on before the link opened
            left = await next_event(events, PlayerLeft, timeout=5)
            assert (left.name, left.player_key, left.guid) == ("Bravo17", "0", G1)
            fake.broadcast("Player #3 No Guid Yet (10.0.0.3:2304) connected")
            joined = await next_event(events, PlayerJoined, timeout=5)
            assert (joined.name, joined.player_key, joined.guid) == ("No Guid Yet", "3", None)
            fake.broadcast(f"Player #3 No Guid Yet ({G1}) has been kicked by BattlEye: Banned")
            banned = await next_event(events, PlayerBanned, timeout=5)
            assert (banned.reason, banned.guid, banned.server_id) == ("", G1, 7)

            with pytest.raises(InvalidInput):
                await link.command("players\n#shutdown")
            with pytest.raises(InvalidInput):
                await link.kick(OnlinePlayer(key="Bob", name="Bob"), "x")
            with pytest.raises(NotSupported):
                await link.add_ban(GameBan(BanKind.NAME, "steve", None))
            with pytest.raises(InvalidInput):
                await link.add_ban(GameBan(BanKind.GUID, "not-a-guid", None))
            with pytest.raises(InvalidInput):
                await link.say(" \n ")

            await fake.stop()
            with pytest.raises(NotRunning, match="did not answer"):
                await link.probe()
            lost = await next_event(events, RconStatus, timeout=5)
            assert not lost.connected and not link.connected
            await fake.start()
            back = await next_event(events, RconStatus, timeout=10)
            assert back.connected and back.reason == "reconnected"
            await link.probe()
        finally:
            await link.close()
            await fake.stop()
    with pytest.raises(NotRunning):
        await link.probe()


async def test_graceful_stop_without_a_link_uses_a_short_lived_client(tmp_path: Path) -> None:
    profile = fast_profile(write_fake_arma3(tmp_path / "bin"))
    port, rcon_port = free_arma_ports()
    ctx = ServerContext(
        server_id=1,
        name="bare",
        folder=tmp_path / "bare",
        settings={"port": port, "rcon_port": rcon_port},
        secrets={"rcon_password": RCON_PASSWORD},
    )
    for config in profile.files(ctx):
        atomic_write(config.path, config.content, mode=0o600 if config.secret else 0o644)
    profile.prepare(ctx)
    spec = profile.launch(ctx)
    with Arma3Layout.of(ctx.folder).console_log.open("ab") as stdout:  # as spawn() does
        proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            cwd=spec.cwd,
            env={**os.environ, **spec.env},
            stdout=stdout,
            start_new_session=True,
        )
    control = _BareControl(proc)
    try:
        async with asyncio.timeout(10):
            await profile.wait_ready(ctx, control)
        began = time.monotonic()
        async with asyncio.timeout(5):
            await profile.graceful_stop(ctx, control)
            assert await proc.wait() == 0
        assert time.monotonic() - began < 2.0
        assert "Shutting down: #shutdown over RCon" in console_text(tmp_path / "bare")
    finally:
        if proc.returncode is None:
            kill_groups([proc.pid])
            await proc.wait()


class _BareControl:
    """The RuntimeControl of a process started by the test, with no link."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.link = None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def is_alive(self) -> bool:
        return self._proc.returncode is None

    def write_console(self, line: str) -> None:
        raise NotImplementedError

    async def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> str:
        raise NotImplementedError


class _AliveControl(_BareControl):
    """A game that stays alive (its RCon is a fake server in this process)."""

    def __init__(self) -> None:
        self.link = None

    @property
    def pid(self) -> int:
        return os.getpid()

    def is_alive(self) -> bool:
        return True


async def test_a_login_answered_later_than_one_attempt_still_makes_the_server_ready(
    tmp_path: Path,
) -> None:
    """Seen under two suites at once: a busy fake answered each readiness login after the
    0.5 s one attempt waited; every answer reached a socket already closed, and a start
    that was never going to fail waited out its whole start timeout."""
    profile = fast_profile(write_fake_arma3(tmp_path / "bin"))  # 0.3 s per attempt
    fake = FakeBattlEyeServer(RCON_PASSWORD, delay=1.0)  # every datagram out 1 s late
    await fake.start()
    try:
        ctx = ServerContext(
            server_id=1,
            name="slow",
            folder=tmp_path / "slow",
            settings={"port": 2302, "rcon_port": fake.port},
            secrets={"rcon_password": RCON_PASSWORD},
        )
        began = time.monotonic()
        async with asyncio.timeout(30):
            await profile.wait_ready(ctx, _AliveControl())
        assert time.monotonic() - began < 30
        assert any(isinstance(event, AdminLoggedIn) for event in fake.events)
    finally:
        await fake.stop()


async def test_a_link_cancelled_while_it_asks_for_players_closes_its_socket() -> None:
    """Seen under two suites at once: a stop of a frozen game cancelled the link while it
    asked `players` after login; its UDP socket was never closed (found by the garbage
    collector in a later test)."""
    fake: FakeBattlEyeServer

    def frozen_after_login(command: str) -> str:
        fake.outbound_loss = 1.0  # the game freezes: this answer and all later ones are lost
        return default_handler(command)

    fake = FakeBattlEyeServer(RCON_PASSWORD, handler=frozen_after_login)
    await fake.start()
    try:
        opening = asyncio.ensure_future(
            Arma3Link.connect(
                host="127.0.0.1",
                port=fake.port,
                password=RCON_PASSWORD,
                bus=EventBus(),
                server_id=1,
                server="frozen",
            )
        )
        async with asyncio.timeout(10):
            while fake.outbound_loss < 1.0:
                await asyncio.sleep(0.01)
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        gc.collect()  # a leaked transport warns here, and pytest turns that into a failure
        open_udp = [
            t
            for t in gc.get_objects()
            if isinstance(t, asyncio.DatagramTransport)
            and not t.is_closing()
            and t.get_extra_info("peername") == ("127.0.0.1", fake.port)
        ]
        assert open_udp == []
    finally:
        await fake.stop()
