"""HostService on the real host: sane figures, server counts, and errors of the last 24 h."""

from __future__ import annotations

import ipaddress
import socket
import time
from pathlib import Path

from core.events import ServerCrashed
from core.services.host import HostService, host_addresses
from core.supervisor.states import ServerState
from tests.integration.supervision import next_event, supervised


async def test_host_info_is_sane(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        running = await env.add_server("up")
        await env.add_server("down")
        await running.start()
        host = HostService(env.supervisor, started_at=time.time() - 5, data_dir=env.data_dir)
        info = await host.info()
        await running.stop(kill=True)

    assert info.hostname == socket.gethostname()
    assert info.os_name and info.kernel and info.cpu_model
    assert info.cpu_count >= 1
    assert len(info.load_average) == 3 and all(x >= 0 for x in info.load_average)
    assert 0 < info.ram_used <= info.ram_total
    assert info.disk_total > 0 and 0 < info.disk_free <= info.disk_total
    assert 0 < info.disk_used <= info.disk_total
    assert info.host_uptime > 0
    assert 5 <= info.bot_uptime < 60
    assert (info.servers_running, info.servers_total) == (1, 2)
    assert info.errors_recorded == 0
    for address in info.addresses:
        ip = ipaddress.ip_address(address)
        assert not ip.is_loopback and not ip.is_link_local
    assert info.addresses == host_addresses()


async def test_errors_recorded_count_the_last_day(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        crashy = await env.add_server("crashy", ["--crash-after", "0.4"], auto_restart=False)
        other = await env.add_server("other")
        host = HostService(env.supervisor, started_at=time.time(), data_dir=env.data_dir)
        with env.bus.subscribe(ServerCrashed) as crashes:
            await crashy.start()
            await next_event(crashes, ServerCrashed, timeout=10)
        assert crashy.state is ServerState.CRASHED
        assert await host.errors_recorded() == 1

        host.record_error()
        host.record_error()
        history = env.supervisor.history
        day_ago = time.time() - 86400 - 60
        await history.add(other.id, "crash", {}, ts=day_ago)  # too old to count
        await history.add(other.id, "transition", {"old": "starting", "new": "failed"})
        await history.add(other.id, "transition", {"old": "crashed", "new": "failed"}, ts=day_ago)
        await history.add(other.id, "transition", {"old": "stopped", "new": "starting"})
        assert await host.errors_recorded() == 1 + 2 + 1
        assert (await host.info()).errors_recorded == 4
