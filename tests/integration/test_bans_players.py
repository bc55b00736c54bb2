"""Bans and players against a real database and the real supervisor running fake games.

The games are fake-game processes under the names "arma3" and "minecraft", each with an
in-memory link that records what the services asked of it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.errors import InvalidInput, NotFound, NotRunning, NotSupported
from core.events import RconStatus
from core.games.base import BanKind, GameBan, OnlinePlayer
from core.services.audit import Actor, AuditLog
from core.services.bans import BanService
from core.services.player_errors import AmbiguousPlayer, UnknownPlayer
from core.services.players import PlayerService
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from data.repositories.history import AuditEntry, AuditRepository
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.fakes.memory_link import MemoryLink, MemoryProfile
from tests.integration.supervision import FAST, Env, supervised

MOD = Actor(1001, "mod")
GUID_A = "80a5885ebe2420bab5e158a310fcbc7d"
GUID_B = "20446897121fafa82c1069ed07820f27"
UUID_ALEX = "069a79f4-44e9-4726-a5be-fca90e38aaf5"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.02)


async def _none_open(w: World) -> bool:
    count = await w.env.db.fetchval("SELECT COUNT(*) FROM player_sessions WHERE left_at IS NULL")
    return int(count) == 0


@dataclass
class World:
    env: Env
    arma: MemoryProfile
    mc: MemoryProfile
    bans: BanService
    players: PlayerService
    audit: AuditLog
    clock: Clock

    async def server(self, name: str, game: str) -> ManagedServer:
        record = await ServerRepository(self.env.db).create(name, game)
        await SettingsRepository(self.env.db).set_many(
            record.id, {**FAST, "args": ["--console"], "liveness_interval": 0}
        )
        return await self.env.supervisor.add(record)

    async def running(self, name: str, game: str = "arma3") -> tuple[ManagedServer, MemoryLink]:
        """A started server whose link is open and whose first ban sync happened."""
        server = await self.server(name, game)
        assert await server.start() is ServerState.RUNNING
        profile = self.arma if game == "arma3" else self.mc
        await eventually(lambda: server.link is not None)
        link = profile.link(name)
        await eventually(lambda: bool(link.of("sync_bans")))
        return server, link

    async def audited(self, action: str) -> list[AuditEntry]:
        return [e for e in await self.audit.recent(100) if e.action == action]


@asynccontextmanager
async def world(
    tmp_path: Path, *, expiry_interval: float = 30.0, poll_interval: float = 30.0
) -> AsyncIterator[World]:
    arma, mc = MemoryProfile("arma3"), MemoryProfile("minecraft")
    clock = Clock()
    async with supervised(tmp_path, [arma, mc]) as env:
        audit = AuditLog(AuditRepository(env.db))
        bans = BanService(
            env.supervisor, env.db, env.bus, audit, clock=clock, expiry_interval=expiry_interval
        )
        players = PlayerService(
            env.supervisor, env.db, env.bus, audit, bans, clock=clock, poll_interval=poll_interval
        )
        await bans.start()
        await players.start()
        try:
            yield World(env, arma, mc, bans, players, audit, clock)
        finally:
            await players.close()
            await bans.close()


# -- bans ------------------------------------------------------------------------------


async def test_a_ban_added_while_stopped_reaches_the_game_at_the_next_start(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        alpha = await w.server("alpha", "arma3")
        ban = await w.bans.add(MOD, GUID_A.upper(), "perm", "aimbot\nreally", "alpha")
        assert (ban.kind, ban.value, ban.expires_at, ban.reason) == (
            BanKind.GUID,
            GUID_A,
            None,
            "aimbot really",
        )
        assert (ban.server_name, ban.author_id, ban.author_name) == ("alpha", 1001, "mod")
        expected = GameBan(BanKind.GUID, GUID_A, None, "aimbot really")
        assert await w.bans.active_for(alpha.id) == [expected]
        assert w.env.supervisor.bans_provider == w.bans.bans_for_start

        await alpha.start()
        assert w.arma.files_bans["alpha"][-1] == (expected,), "the ban file is written at start"
        await eventually(lambda: "alpha" in w.arma.links)
        link = w.arma.link("alpha")
        await eventually(lambda: bool(link.of("sync_bans")))
        assert link.of("sync_bans")[-1] == (expected,)

        # a reconnect of the game's link syncs again (the game may have rewritten its file)
        link.bans.clear()
        syncs = len(link.of("sync_bans"))
        w.env.bus.publish(RconStatus(server_id=alpha.id, server="alpha", connected=True))
        await eventually(lambda: len(link.of("sync_bans")) > syncs)
        assert list(link.bans.values()) == [expected]

        [entry] = await w.audited("bans.add")
        assert entry.actor_name == "mod" and entry.server_id == alpha.id
        assert entry.arguments["value"] == GUID_A and entry.arguments["duration"] == "perm"


async def test_a_ban_added_while_running_is_applied_at_once_and_lifted_on_removal(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        alpha, link = await w.running("alpha")
        ban = await w.bans.add(MOD, "203.0.113.7", "7d", "", "alpha")
        assert ban.kind is BanKind.IP and ban.expires_at == w.clock.now + 7 * 86400
        assert link.of("add_ban") == [ban.game_ban()]
        assert await w.bans.get(ban.id) == ban

        removed = await w.bans.remove(Actor(7, "admin"), ban.id)
        assert link.of("remove_ban") == [ban.game_ban()]
        assert (removed.removed_by_id, removed.removed_by_name) == (7, "admin")
        assert removed.status(w.clock.now) == "removed"
        assert await w.bans.active_for(alpha.id) == []
        assert await w.bans.list() == []
        assert [b.id for b in await w.bans.list(include_expired=True)] == [ban.id]
        with pytest.raises(InvalidInput, match="already removed"):
            await w.bans.remove(MOD, ban.id)
        with pytest.raises(NotFound, match="no ban #999"):
            await w.bans.remove(MOD, 999)
        assert len(await w.audited("bans.remove")) == 1


async def test_a_temporary_ban_expires_on_time(tmp_path: Path) -> None:
    async with world(tmp_path, expiry_interval=0.05) as w:
        alpha, link = await w.running("alpha")
        ban = await w.bans.add(MOD, GUID_A, "30m", "tk", "alpha")
        assert link.of("add_ban") == [ban.game_ban()]

        w.clock.now += 29 * 60
        await asyncio.sleep(0.2)  # several expiry ticks pass: nothing is due yet
        assert link.of("remove_ban") == []
        assert [b.id for b in await w.bans.list("alpha")] == [ban.id]

        w.clock.now += 2 * 60
        await eventually(lambda: bool(link.of("remove_ban")))
        assert link.of("remove_ban") == [ban.game_ban()]
        assert await w.bans.list() == []
        [listed] = await w.bans.list(include_expired=True)
        assert listed.status(w.clock.now) == "expired" and listed.expired_at is not None
        assert listed.removed_at is None
        assert await w.bans.active_for(alpha.id) == []
        [entry] = await w.audited("bans.expire")
        assert entry.actor_id is None and entry.arguments["ban"] == ban.id
        with pytest.raises(InvalidInput, match="already expired"):
            await w.bans.remove(MOD, ban.id)


async def test_scope_one_server_or_every_server_whose_game_knows_the_kind(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        alpha, alpha_link = await w.running("alpha")
        bravo, bravo_link = await w.running("bravo")
        craft, craft_link = await w.running("craft", "minecraft")

        only_alpha = await w.bans.add(MOD, GUID_A, "perm", "", "alpha")
        every_guid = await w.bans.add(MOD, GUID_B, "1d", "", None)
        every_ip = await w.bans.add(MOD, "2001:db8::7", "perm", "", None)
        assert every_guid.server_id is None and every_guid.server_name is None

        assert alpha_link.of("add_ban") == [
            g.game_ban() for g in (only_alpha, every_guid, every_ip)
        ]
        assert bravo_link.of("add_ban") == [every_guid.game_ban(), every_ip.game_ban()]
        assert craft_link.of("add_ban") == [every_ip.game_ban()], "Minecraft has no GUIDs"
        assert {b.value for b in await w.bans.active_for(bravo.id)} == {GUID_B, "2001:db8::7"}
        assert {b.value for b in await w.bans.active_for(craft.id)} == {"2001:db8::7"}
        assert [b.id for b in await w.bans.list("bravo")] == [every_ip.id, every_guid.id]
        assert len(await w.bans.list()) == 3

        # the same target banned on one server and on all: lifting one keeps the other
        also_alpha = await w.bans.add(MOD, GUID_B, "perm", "again", "alpha")
        assert len(await w.bans.active_for(alpha.id)) == 3, "one entry per target"
        await w.bans.remove(MOD, also_alpha.id)
        assert alpha_link.of("remove_ban") == []
        assert (("guid", GUID_B)) in alpha_link.bans, "still banned by the all-servers ban"

        # banning the same target and scope again replaces the old ban
        longer = await w.bans.add(MOD, GUID_A, "perm", "replaced", "alpha")
        assert (await w.bans.get(only_alpha.id)).status(w.clock.now) == "removed"
        assert alpha_link.of("remove_ban") == [only_alpha.game_ban()]
        assert alpha_link.bans[("guid", GUID_A)] == longer.game_ban()
        assert craft_link.of("add_ban") == [every_ip.game_ban()]


async def test_kinds_must_suit_the_game_and_input_is_checked(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.server("alpha", "arma3")
        await w.server("craft", "minecraft")
        with pytest.raises(NotSupported, match="BattlEye GUID or IP address"):
            await w.bans.add(MOD, "Notch", "perm", "", "alpha")
        with pytest.raises(NotSupported, match="not by BattlEye GUID"):
            await w.bans.add(MOD, f"guid:{GUID_A}", "perm", "", "craft")
        by_hex = await w.bans.add(MOD, GUID_A, "perm", "", "craft")
        assert by_hex.kind is BanKind.UUID, "32 hex chars on Minecraft are a UUID"
        assert (await w.bans.add(MOD, "Notch", "perm", "", "craft")).kind is BanKind.NAME
        assert (await w.bans.add(MOD, UUID_ALEX, "perm", "", "craft")).kind is BanKind.UUID
        assert (await w.bans.add(MOD, "10.1.2.3", "perm", "", "alpha")).kind is BanKind.IP
        with pytest.raises(NotSupported, match="IPv4 only"):
            await w.bans.add(MOD, "2001:db8::7", "perm", "", "craft")
        with pytest.raises(InvalidInput, match="duration"):
            await w.bans.add(MOD, GUID_A, "soon", "", "alpha")
        with pytest.raises(InvalidInput, match="GUID"):
            await w.bans.add(MOD, "'; DROP TABLE bans; --", "perm", "", None)
        with pytest.raises(NotFound, match="no server named"):
            await w.bans.add(MOD, GUID_A, "perm", "", "nowhere")
        assert len(await w.bans.list()) == 4


async def test_an_unreachable_game_gets_the_change_at_the_next_sync(tmp_path: Path) -> None:
    async with world(tmp_path, expiry_interval=0.1) as w:
        _, link = await w.running("alpha")
        link.fail = {"add_ban", "sync_bans"}
        ban = await w.bans.add(MOD, GUID_A, "perm", "", "alpha")
        assert await w.bans.get(ban.id) == ban, "the ban is kept"
        [entry] = await w.audited("bans.add")
        assert "pending on alpha" in entry.result
        assert ("guid", GUID_A) not in link.bans
        assert w.bans.pending_servers() == ["alpha"]
        await eventually(lambda: len(link.of("sync_bans")) >= 3)  # retried at every tick
        link.fail = set()
        await eventually(lambda: ("guid", GUID_A) in link.bans)
        assert link.of("sync_bans")[-1] == (ban.game_ban(),)
        await eventually(lambda: w.bans.pending_servers() == [])

        # a removal that does not reach the game is made good the same way
        link.fail = {"remove_ban"}
        await w.bans.remove(MOD, ban.id)
        assert ("guid", GUID_A) in link.bans
        link.fail = set()
        await eventually(lambda: ("guid", GUID_A) not in link.bans)
        assert link.of("sync_bans")[-1] == ()


async def test_bans_survive_a_restart_of_the_services(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        alpha = await w.server("alpha", "arma3")
        ban = await w.bans.add(MOD, GUID_A, "perm", "", "alpha")
        await w.bans.close()
        assert w.env.supervisor.bans_provider is None
        again = BanService(w.env.supervisor, w.env.db, w.env.bus, w.audit, clock=w.clock)
        await again.start()
        try:
            assert await again.active_for(alpha.id) == [ban.game_ban()]
            await alpha.start()
            assert w.arma.files_bans["alpha"][-1] == (ban.game_ban(),)
        finally:
            await again.close()


# -- players ---------------------------------------------------------------------------


async def test_join_and_leave_keep_the_live_list_and_the_history(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        alpha, link = await w.running("alpha")
        t0 = w.clock.now
        link.join(OnlinePlayer("0", "Bravo17", guid=GUID_A.upper(), ip="76.108.91.78:2304"))
        await eventually(lambda: len(w.players.known_online("alpha")) == 1)
        [live] = w.players.known_online("alpha")
        assert (live.key, live.name, live.guid, live.ip) == ("0", "Bravo17", GUID_A, "76.108.91.78")

        w.clock.now = t0 + 600
        link.leave("0")
        await eventually(lambda: not w.players.known_online("alpha"))
        [record] = await w.players.history("bravo")
        assert record.player.guid == GUID_A and record.player.game == "arma3"
        [session] = record.sessions
        assert (session.server_name, session.name) == ("alpha", "Bravo17")
        assert (session.joined_at, session.left_at) == (t0, t0 + 600)

        # the same GUID under another name and address is the same player
        w.clock.now = t0 + 1000
        link.join(OnlinePlayer("3", "Bravo_Renamed", guid=GUID_A, ip="2001:db8::5"))
        await eventually(lambda: len(w.players.known_online("alpha")) == 1)
        [record] = await w.players.history(GUID_A)
        assert [n.value for n in record.names] == ["Bravo_Renamed", "Bravo17"]
        assert [i.value for i in record.ips] == ["2001:db8::5", "76.108.91.78"]
        assert [s.left_at for s in record.sessions] == [None, t0 + 600]

        # a GUID that arrives after the join is attached to the player...
        link.join(OnlinePlayer("4", "Latecomer", ip="198.51.100.4"))
        await eventually(lambda: len(w.players.known_online("alpha")) == 2)
        link.players_now["4"] = OnlinePlayer("4", "Latecomer", guid=GUID_B, ip="198.51.100.4")
        online = {p.key: p for p in await w.players.online("alpha")}
        assert online["4"].guid == GUID_B
        [late] = await w.players.history(GUID_B)
        assert [s.name for s in late.sessions] == ["Latecomer"]
        link.leave("4")
        await eventually(lambda: len(w.players.known_online("alpha")) == 1)

        # ...or, when another player already has it, merged into that one
        w.clock.now = t0 + 1500
        link.join(OnlinePlayer("5", "Ghost", ip="198.51.100.5"))
        await eventually(lambda: len(w.players.known_online("alpha")) == 2)
        link.players_now["5"] = OnlinePlayer("5", "Ghost", guid=GUID_B)
        await w.players.online("alpha")
        [late] = await w.players.history(GUID_B)
        assert [s.name for s in late.sessions] == ["Ghost", "Latecomer"]
        assert {n.value for n in late.names} == {"Ghost", "Latecomer"}
        assert {i.value for i in late.ips} == {"198.51.100.4", "198.51.100.5"}
        assert [r.player.guid for r in await w.players.history("ghost")] == [GUID_B]

        # the server stopping ends every open session
        w.clock.now = t0 + 2000
        await alpha.stop()
        await eventually(lambda: w.players.known_online("alpha") == [])
        await eventually(lambda: _none_open(w))
        assert await w.players.online("alpha") == []
        for query in (GUID_A, GUID_B):
            [record] = await w.players.history(query)
            assert record.sessions[0].left_at == t0 + 2000


async def test_the_poll_catches_up_with_lost_events(tmp_path: Path) -> None:
    async with world(tmp_path, poll_interval=0.05) as w:
        _, link = await w.running("alpha")
        link.join(OnlinePlayer("0", "Quiet", guid=GUID_A, ip="192.0.2.1"), publish=False)
        await eventually(lambda: [p.name for p in w.players.known_online("alpha")] == ["Quiet"])
        t_left = w.clock.now = w.clock.now + 60
        link.leave("0", publish=False)
        await eventually(lambda: _none_open(w))
        assert w.players.known_online("alpha") == []
        [record] = await w.players.history("quiet")
        assert record.sessions[0].left_at == t_left

        # a session the previous run left open ends at the player's last sighting
        link.join(OnlinePlayer("1", "Sleeper", guid=GUID_B), publish=False)
        await eventually(lambda: len(w.players.known_online("alpha")) == 1)
        await w.players.close()
        seen_at = w.clock.now
        w.clock.now += 3600
        w.players = PlayerService(
            w.env.supervisor, w.env.db, w.env.bus, w.audit, w.bans, clock=w.clock
        )
        await w.players.start()
        [record] = await w.players.history("sleeper")
        assert record.sessions[0].left_at == seen_at


HOSTILE = [
    "Robert'); DROP TABLE players;--",
    "@everyone",
    "`back`ticks`",
    "50%_off",
    "Максим",
    "a\\b",
    '"quoted" name',
    "<@123456789>",
]


async def test_history_search_with_hostile_names(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        _, link = await w.running("alpha")
        for number, name in enumerate(HOSTILE):
            guid = f"{number:032x}"
            link.join(OnlinePlayer(str(number), name, guid=guid, ip=f"192.0.2.{number + 1}"))
        await eventually(lambda: len(w.players.known_online("alpha")) == len(HOSTILE))

        for number, name in enumerate(HOSTILE):
            by_name = await w.players.history(name)
            assert [r.player.last_name for r in by_name] == [name]
            assert [n.value for n in by_name[0].names] == [name], "stored verbatim"
            [by_guid] = await w.players.history(f"{number:032X}")
            assert by_guid.player.last_name == name
            [by_ip] = await w.players.history(f"192.0.2.{number + 1}")
            assert by_ip.player.last_name == name
        assert [r.player.last_name for r in await w.players.history("%")] == ["50%_off"]
        assert [r.player.last_name for r in await w.players.history("_")] == ["50%_off"]
        assert [r.player.last_name for r in await w.players.history("максим")] == ["Максим"]
        assert [r.player.last_name for r in await w.players.history("\\")] == ["a\\b"]
        assert await w.players.history("nobody like this") == []
        assert len(await w.players.history("e", limit=2)) == 2
        with pytest.raises(InvalidInput):
            await w.players.history("   ")
        assert await w.env.db.fetchval("SELECT COUNT(*) FROM players") == len(HOSTILE)


async def test_kick_ban_and_say_reach_the_game_and_are_audited(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        alpha, link = await w.running("alpha")
        link.join(OnlinePlayer("0", "Bravo17", guid=GUID_A, ip="192.0.2.1"))
        link.join(OnlinePlayer("1", "Bravo", guid=GUID_B, ip="192.0.2.2"))
        link.join(OnlinePlayer("2", "Charlie"))
        await eventually(lambda: len(w.players.known_online("alpha")) == 3)

        with pytest.raises(AmbiguousPlayer) as ambiguous:
            await w.players.find_online("alpha", "bra")
        assert {p.name for p in ambiguous.value.candidates} == {"Bravo", "Bravo17"}
        assert "Bravo17 (#0)" in str(ambiguous.value) and "Bravo (#1)" in str(ambiguous.value)
        assert (await w.players.find_online("alpha", "Bravo")).key == "1", "exact name first"
        assert (await w.players.find_online("alpha", "#0")).name == "Bravo17"
        assert (await w.players.find_online("alpha", "ch")).name == "Charlie"
        with pytest.raises(UnknownPlayer, match="Charlie") as unknown:
            await w.players.find_online("alpha", "zed")
        assert len(unknown.value.candidates) == 3

        kicked = await w.players.kick(MOD, "alpha", "bravo17", "afk\ntoo long")
        assert kicked.name == "Bravo17"
        assert link.of("kick") == [("0", "afk too long")]

        with pytest.raises(InvalidInput, match="GUID of Charlie is not known yet"):
            await w.players.ban(MOD, "alpha", "charlie", "perm", "")
        ban = await w.players.ban(MOD, "alpha", "1", "12h", "griefing")
        assert (ban.kind, ban.value, ban.server_id) == (BanKind.GUID, GUID_B, alpha.id)
        assert ban.expires_at == w.clock.now + 12 * 3600
        assert link.of("ban") == [("1", ban.game_ban())]
        assert link.of("add_ban") == []
        assert await w.bans.active_for(alpha.id) == [ban.game_ban()]

        sent = await w.players.say(MOD, "alpha", "restart in 5 min\n@everyone " + "x" * 300)
        assert len(sent) == 200 and "\n" not in sent
        assert link.of("say") == [sent]
        with pytest.raises(InvalidInput, match="empty"):
            await w.players.say(MOD, "alpha", "\n\t")

        link.fail = {"say"}
        with pytest.raises(NotRunning):
            await w.players.say(MOD, "alpha", "hello")

        [kick] = await w.audited("players.kick")
        assert kick.arguments["player"] == "Bravo17" and kick.arguments["reason"] == "afk too long"
        [banned] = await w.audited("players.ban")
        assert banned.arguments["player"] == "Bravo" and banned.arguments["ban"] == ban.id
        says = await w.audited("players.say")
        assert [(s.ok, s.arguments["message"]) for s in says] == [(False, "hello"), (True, sent)]
        await eventually(lambda: len(w.players.known_online("alpha")) == 1)

        await w.server("idle", "arma3")
        with pytest.raises(NotRunning, match="not running"):
            await w.players.kick(MOD, "idle", "x", "")
        assert await w.players.online("idle") == []


async def test_minecraft_players_are_banned_by_uuid_or_name(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        _, link = await w.running("craft", "minecraft")
        link.join(OnlinePlayer("Steve", "Steve"))
        link.join(OnlinePlayer("Alex", "Alex", guid=UUID_ALEX.replace("-", "")))
        await eventually(lambda: len(w.players.known_online("craft")) == 2)
        by_name = await w.players.ban(MOD, "craft", "steve", "perm", "")
        assert (by_name.kind, by_name.value) == (BanKind.NAME, "Steve")
        by_uuid = await w.players.ban(MOD, "craft", "Alex", "1d", "", all_servers=True)
        assert (by_uuid.kind, by_uuid.value, by_uuid.server_id) == (BanKind.UUID, UUID_ALEX, None)
        assert [args[0] for args in link.of("ban")] == ["Steve", "Alex"]
        [alex] = await w.players.history(UUID_ALEX)
        assert alex.player.guid == UUID_ALEX
