"""A server whose process lives but whose game stopped answering is restarted, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.events import ServerCrashed, ServerHung, ServerStateChanged
from core.supervisor.states import ServerState
from tests.fakes.memory_link import MemoryProfile
from tests.integration.supervision import next_event, supervised

S = ServerState


async def test_a_hung_game_is_restarted_by_the_liveness_probe(tmp_path: Path) -> None:
    profile = MemoryProfile()
    async with supervised(tmp_path, [profile]) as env:
        server = await env.add_server("alpha", liveness_interval=0.1, liveness_failures=3)
        with env.bus.subscribe(ServerHung, ServerCrashed, ServerStateChanged) as events:
            await server.start()
            assert server.handle is not None
            first_pid = server.handle.pid
            async with asyncio.timeout(5):  # healthy probes first
                while not (links := profile.links.get("alpha")) or len(links[0].of("probe")) < 2:
                    await asyncio.sleep(0.05)
            first = profile.links["alpha"][0]
            first.fail.add("probe")  # the game stops answering
            hung = await next_event(events, ServerHung, timeout=5)
            changes: list[ServerStateChanged] = []
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
        assert profile.links["alpha"][0] is first and first.closed


async def test_liveness_off_never_probes(tmp_path: Path) -> None:
    profile = MemoryProfile()
    async with supervised(tmp_path, [profile]) as env:
        server = await env.add_server("alpha", liveness_interval=0)
        await server.start()
        await asyncio.sleep(0.3)
        assert profile.links.get("alpha") and profile.links["alpha"][0].of("probe") == []
        assert server.link is profile.links["alpha"][0]
        await server.stop()
        assert server.link is None and profile.links["alpha"][0].closed
