"""The metrics the webhooks' runtime sits beside, read from a real supervisor running fake game
servers: RCon round trip from the liveness probe, crashes and restarts, the heartbeat."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.metrics import Metrics
from core.supervisor.states import ServerState
from tests.fakes.memory_link import MemoryProfile
from tests.integration.supervision import supervised

S = ServerState


def sample(text: str, prefix: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def wait_for(metrics: Metrics, prefix: str, want: float, timeout: float = 20) -> str:
    async with asyncio.timeout(timeout):
        while True:
            text = metrics.render()
            if sample(text, prefix) == want:
                return text
            await asyncio.sleep(0.05)


async def test_round_trip_of_the_liveness_probe(tmp_path: Path) -> None:
    profile = MemoryProfile()
    async with supervised(tmp_path, [profile]) as env:
        metrics = Metrics(env.bus, env.supervisor, database=env.db.path)
        metrics.start()
        try:
            server = await env.add_server("alpha", liveness_interval=0.1)
            assert sample(metrics.render(), 'languard_rcon_connected{server="alpha"}') is None
            await server.start()
            async with asyncio.timeout(10):
                while server.round_trip is None:
                    await asyncio.sleep(0.05)
            text = metrics.render()
            rtt = sample(text, 'languard_rcon_round_trip_seconds{server="alpha"}')
            assert rtt is not None and 0 <= rtt < 10
            assert sample(text, 'languard_rcon_connected{server="alpha"}') == 1
            assert metrics.supervisor_alive()
            assert await metrics.database_writable()
            await server.stop()
            text = metrics.render()
            assert sample(text, 'languard_rcon_round_trip_seconds{server="alpha"}') is None
            assert sample(text, 'languard_server_state{server="alpha",state="stopped"}') == 1
        finally:
            await metrics.close()


async def test_crashes_and_restarts_from_the_supervisor(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        metrics = Metrics(env.bus, env.supervisor, database=env.db.path)
        metrics.start()
        try:
            server = await env.add_server(
                "beta", ["--crash-after", "0.3"], max_crashes=2, backoff_base=0.1
            )
            await server.start()
            text = await wait_for(metrics, 'languard_servers{state="failed"}', 1, timeout=40)
            assert sample(text, 'languard_server_crashes_total{server="beta"}') == 2
            assert sample(text, 'languard_server_restarts_total{server="beta",kind="crash"}') == 1
            assert (
                sample(text, 'languard_server_restarts_total{server="beta",kind="requested"}') == 0
            )
            steady = await env.add_server("gamma")
            await steady.start()
            assert steady.state is S.RUNNING
            await steady.restart(reason="restart by test")
            text = await wait_for(
                metrics, 'languard_server_restarts_total{server="gamma",kind="requested"}', 1
            )
            assert sample(text, 'languard_server_restarts_total{server="gamma",kind="crash"}') == 0
            await steady.stop()
            await server.stop()
            await metrics.forget_server(server.id)
            await env.supervisor.remove(server.id)
            assert "beta" not in metrics.render()
        finally:
            await metrics.close()
