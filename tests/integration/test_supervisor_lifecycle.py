"""Start, stop, kill, restart and every refusal, with real fake-game processes."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from core.errors import (
    AlreadyRunning,
    ConfigWriteError,
    ExecutableNotAllowed,
    ExecutableNotFound,
    NotRunning,
    PortInUse,
)
from core.events import LogLines, ServerFailed, ServerMetrics, ServerStateChanged
from core.supervisor.process import identity_of
from core.supervisor.states import ServerState
from data.repositories.history import HistoryRepository
from data.repositories.servers import ServerRepository
from data.repositories.telemetry import MetricsRepository
from tests.fakes.fake_profile import FakeProfile
from tests.integration.supervision import next_event, supervised

S = ServerState


def alive(pid: int) -> bool:
    return identity_of(pid) is not None


async def test_start_then_graceful_stop_through_the_console(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server("alpha", ["--console"])
        with env.bus.subscribe(ServerStateChanged) as changes:
            assert await server.start() is S.RUNNING
            assert server.handle is not None
            pid = server.handle.pid
            record = await ServerRepository(env.db).get(server.id)
            assert record is not None and record.state is S.RUNNING
            assert record.process is not None and record.process.pid == pid
            # own session, so the bot's terminal signals never reach it
            assert os.getsid(pid) == pid
            assert await server.stop() is S.STOPPED
            assert not alive(pid)
            seen = [(e.old, e.new) for e in [changes.get_nowait() for _ in range(4)] if e]
        assert seen == [
            (S.STOPPED, S.STARTING),
            (S.STARTING, S.RUNNING),
            (S.RUNNING, S.STOPPING),
            (S.STOPPING, S.STOPPED),
        ]
        console = (env.data_dir / "servers" / "alpha" / "console.log").read_text()
        assert "console: stop" in console and "stopping on console command" in console
        record = await ServerRepository(env.db).get(server.id)
        assert record is not None and record.process is None and record.state is S.STOPPED
        history = await HistoryRepository(env.db).recent(server.id, kind="transition")
        assert [h.data["new"] for h in reversed(history)] == [
            "starting",
            "running",
            "stopping",
            "stopped",
        ]


async def test_kill_is_immediate(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server("alpha", ["--ignore-term"], stop_timeout=30.0)
        await server.start()
        assert server.handle is not None
        pid = server.handle.pid
        began = time.monotonic()
        assert await server.stop(kill=True) is S.STOPPED
        assert time.monotonic() - began < 5
        assert not alive(pid)


async def test_restart_gives_a_new_process(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server("alpha")
        await server.start()
        assert server.handle is not None
        first = server.handle.pid
        assert await server.restart() is S.RUNNING
        assert server.handle is not None and server.handle.pid != first
        assert not alive(first)


async def test_a_server_that_ignores_every_polite_stop_is_killed(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server(
            "stubborn",
            ["--console", "--ignore-stop", "--ignore-term"],
            stop_timeout=1.0,
            term_timeout=0.5,
        )
        await server.start()
        assert server.handle is not None
        pid = server.handle.pid
        began = time.monotonic()
        assert await server.stop() is S.STOPPED
        took = time.monotonic() - began
        assert not alive(pid)
        assert 1.4 <= took < 6, took  # waited for console stop, then TERM, then KILL
        console = (env.data_dir / "servers" / "stubborn" / "console.log").read_text()
        assert "console: stop" in console  # the graceful way was tried first


async def test_sigterm_follows_when_the_game_has_no_graceful_way(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server("plain", stop_timeout=0.5)
        await server.start()
        assert server.handle is not None
        pid = server.handle.pid
        assert await server.stop() is S.STOPPED
        assert not alive(pid)


async def test_refusals_leave_the_server_stopped(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server("alpha")
        await server.start()
        with pytest.raises(AlreadyRunning):
            await server.start()
        await server.stop(kill=True)
        with pytest.raises(NotRunning):
            await server.stop()

        # a port some other program holds
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        holder.bind(("0.0.0.0", 0))
        port = holder.getsockname()[1]
        try:
            busy = await env.add_server("busy", ports=[[port, "udp"]])
            with pytest.raises(PortInUse) as info:
                await busy.start()
            assert str(port) in str(info.value)
            assert busy.state is S.STOPPED and busy.handle is None
        finally:
            holder.close()

        # a config file that cannot be written (a folder stands where the file goes)
        broken = await env.add_server("broken")
        (env.data_dir / "servers" / "broken" / "fake.cfg").mkdir(parents=True)
        with pytest.raises(ConfigWriteError):
            await broken.start()
        assert broken.state is S.STOPPED

    async with supervised(
        tmp_path / "b", [FakeProfile(Path("/nonexistent/python3"), frozenset({"python3"}))]
    ) as env:
        missing = await env.add_server("missing")
        with pytest.raises(ExecutableNotFound):
            await missing.start()
        assert missing.state is S.STOPPED

    async with supervised(tmp_path / "c", [FakeProfile(Path("/bin/sh"))]) as env:
        shell = await env.add_server("shell")
        with pytest.raises(ExecutableNotAllowed):
            await shell.start()
        assert shell.state is S.STOPPED


async def test_a_server_that_never_gets_ready_fails_its_start(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server("slow", ["--never-ready"], start_timeout=0.5)
        with env.bus.subscribe(ServerFailed) as failures:
            assert await server.start() is S.FAILED
            failed = await next_event(failures, ServerFailed)
        assert "not ready" in failed.reason
        assert server.handle is None


async def test_game_processes_do_not_inherit_the_bots_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "very-secret-token")
    monkeypatch.setenv("LANGUARD_SECRET_KEY", "very-secret-key")
    async with supervised(tmp_path) as env:
        server = await env.add_server(
            "alpha", ["--print-env", "DISCORD_TOKEN", "--print-env", "LANGUARD_SECRET_KEY"]
        )
        with env.bus.subscribe(LogLines) as lines:
            await server.start()
            texts: list[str] = []
            while not any("LANGUARD_SECRET_KEY" in t for t in texts):
                event = await next_event(lines, LogLines)
                texts += [line.text for line in event.lines]
        assert "env DISCORD_TOKEN=<unset>" in texts
        assert "env LANGUARD_SECRET_KEY=<unset>" in texts


async def test_metrics_sample_a_running_server(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server("alpha")
        assert await env.supervisor.sample(server) is None
        await server.start()
        sample = await env.supervisor.sample(server)
        assert sample is not None and sample.rss_bytes > 1_000_000
        assert sample.server_id == server.id and sample.cpu_percent >= 0


async def test_metrics_are_stored_and_published_at_the_interval(tmp_path: Path) -> None:
    async with supervised(tmp_path, metrics_interval=0.2) as env:
        server = await env.add_server("alpha")
        with env.bus.subscribe(ServerMetrics) as metrics:
            await server.start()
            event = await next_event(metrics, ServerMetrics, timeout=5)
        assert event.server_id == server.id and event.rss_bytes > 1_000_000
        latest = await MetricsRepository(env.db).latest(server.id)
        assert latest is not None and latest.rss_bytes > 1_000_000
