"""Nothing a start leaves behind grows: readiness subscriptions end with their start."""

from __future__ import annotations

from pathlib import Path

from core.supervisor.states import ServerState
from tests.integration.supervision import supervised

S = ServerState


async def test_start_then_kill_before_readiness_leaks_no_subscription(tmp_path: Path) -> None:
    """Seen: 10 start+kill pairs left 10 readiness subscriptions queueing every log line."""
    async with supervised(tmp_path) as env:
        server = await env.add_server("alpha", ["--ready-after", "30"])
        baseline = env.bus.subscriber_count
        for _ in range(10):
            await server.start(wait=False)
            assert server.state is S.STARTING
            assert await server.stop(kill=True) is S.STOPPED
        assert env.bus.subscriber_count == baseline
