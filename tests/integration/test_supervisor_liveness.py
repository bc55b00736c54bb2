"""A server whose process lives but whose game stopped answering is restarted, once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from core.events import EventBus, ServerCrashed, ServerHung, ServerStateChanged
from core.games.base import GameBan, GameLink, OnlinePlayer, RuntimeControl, ServerContext
from core.supervisor.states import ServerState
from tests.fakes.fake_profile import FakeProfile
from tests.integration.supervision import next_event, supervised

S = ServerState


class ProbeLink:
    """A link whose probe can be made to hang; the rest is not used here."""

    def __init__(self, registry: list[ProbeLink]) -> None:
        self.hung = False
        self.closed = False
        self.probes = 0
        registry.append(self)

    @property
    def connected(self) -> bool:
        return not self.closed

    async def probe(self) -> None:
        self.probes += 1
        if self.hung:
            raise TimeoutError("no answer")

    async def command(self, text: str) -> str:
        return ""

    async def players(self) -> list[OnlinePlayer]:
        return []

    async def kick(self, player: OnlinePlayer, reason: str) -> None:
        return None

    async def ban(self, player: OnlinePlayer, ban: GameBan) -> None:
        return None

    async def add_ban(self, ban: GameBan) -> None:
        return None

    async def remove_ban(self, ban: GameBan) -> None:
        return None

    async def sync_bans(self, bans: Sequence[GameBan]) -> None:
        return None

    async def say(self, message: str) -> None:
        return None

    async def load_mission(self, template: str, difficulty: str | None) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


class LinkedProfile(FakeProfile):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[ProbeLink] = []

    async def open_link(
        self, ctx: ServerContext, control: RuntimeControl, bus: EventBus
    ) -> GameLink | None:
        return ProbeLink(self.links)


async def test_a_hung_game_is_restarted_by_the_liveness_probe(tmp_path: Path) -> None:
    profile = LinkedProfile()
    async with supervised(tmp_path, [profile]) as env:
        server = await env.add_server("alpha", liveness_interval=0.1, liveness_failures=3)
        with env.bus.subscribe(ServerHung, ServerCrashed, ServerStateChanged) as events:
            await server.start()
            assert server.handle is not None
            first_pid = server.handle.pid
            async with asyncio.timeout(5):  # healthy probes first
                while not profile.links or profile.links[0].probes < 2:
                    await asyncio.sleep(0.05)
            profile.links[0].hung = True
            hung = await next_event(events, ServerHung, timeout=5)
            changes = []
            while len(changes) < 4:
                changes.append(await next_event(events, ServerStateChanged, timeout=10))
            crashes = [
                e
                for e in [events.get_nowait() for _ in range(events.pending())]
                if isinstance(e, ServerCrashed)
            ]
        assert "3 liveness probes" in hung.reason
        assert [(c.old, c.new) for c in changes[-4:]] == [
            (S.RUNNING, S.STOPPING),
            (S.STOPPING, S.STOPPED),
            (S.STOPPED, S.STARTING),
            (S.STARTING, S.RUNNING),
        ]
        assert all(c.expected for c in changes[-4:]), "a planned restart is not a crash"
        assert not crashes
        assert server.handle is not None and server.handle.pid != first_pid
        assert profile.links[0].closed


async def test_liveness_off_never_probes(tmp_path: Path) -> None:
    profile = LinkedProfile()
    async with supervised(tmp_path, [profile]) as env:
        server = await env.add_server("alpha", liveness_interval=0)
        await server.start()
        await asyncio.sleep(0.3)
        assert profile.links and profile.links[0].probes == 0
        assert server.link is profile.links[0]
        await server.stop()
        assert server.link is None and profile.links[0].closed
