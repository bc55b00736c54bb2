"""Crashes: exit code or signal, backoff restarts, a crash loop given up once."""

from __future__ import annotations

import signal
from pathlib import Path

from core.events import ServerCrashed, ServerFailed, ServerStateChanged
from core.supervisor.states import ServerState
from data.repositories.history import HistoryRepository
from tests.integration.supervision import next_event, supervised

S = ServerState


async def test_crash_loop_backs_off_then_fails_once(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server(
            "crashy",
            ["--ready-after", "0.05", "--crash-after", "0.3", "--exit-code", "7"],
            max_crashes=3,
            backoff_base=0.2,
            backoff_cap=5.0,
        )
        with env.bus.subscribe(ServerCrashed, ServerFailed, ServerStateChanged) as events:
            await server.start(wait=False)
            crashes: list[ServerCrashed] = []
            while len(crashes) < 3:
                crashes.append(await next_event(events, ServerCrashed, timeout=15))
            failed = await next_event(events, ServerFailed, timeout=5)
            # nothing else follows: no fourth start, no second "failed"
            rest = [events.get_nowait() for _ in range(events.pending())]
        assert [c.attempt for c in crashes] == [1, 2, 3]
        assert all(c.exit_code == 7 and c.signal is None for c in crashes)
        assert [c.restart_in_s for c in crashes] == [0.2, 0.4, None]
        assert all(c.max_attempts == 3 for c in crashes)
        assert any("FATAL" in line for line in crashes[0].last_lines)
        assert crashes[0].uptime_s >= 0.25
        assert failed.crashes == 3 and "gave up" in failed.reason
        assert not any(isinstance(e, ServerFailed | ServerCrashed) for e in rest)
        assert server.state is S.FAILED and server.handle is None
        history = await HistoryRepository(env.db).recent(server.id, kind="crash")
        assert len(history) == 3

        # a manual start after giving up gets a fresh crash budget
        with env.bus.subscribe(ServerCrashed) as again:
            await server.start(wait=False)
            first = await next_event(again, ServerCrashed, timeout=10)
        assert first.attempt == 1 and first.restart_in_s == 0.2
        await server.stop()
        assert server.state is S.STOPPED


async def test_a_crash_by_signal_is_reported_with_the_signal(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server(
            "segv",
            ["--crash-after", "0.4", "--crash-signal", str(int(signal.SIGSEGV))],
            auto_restart=False,
        )
        with env.bus.subscribe(ServerCrashed, ServerStateChanged) as events:
            await server.start()
            crash = await next_event(events, ServerCrashed)
        assert crash.signal == signal.SIGSEGV and crash.exit_code is None
        assert crash.restart_in_s is None
        assert server.state is S.CRASHED
        assert await server.stop() is S.STOPPED


async def test_a_crash_during_start_backs_off_like_any_other(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server(
            "early",
            ["--never-ready", "--crash-after", "0.1"],
            max_crashes=2,
        )
        with env.bus.subscribe(ServerCrashed, ServerFailed) as events:
            await server.start(wait=False)
            first = await next_event(events, ServerCrashed)
            second = await next_event(events, ServerCrashed)
            await next_event(events, ServerFailed)
        assert (first.attempt, second.attempt) == (1, 2)
        assert server.state is S.FAILED


async def test_stop_cancels_a_pending_restart(tmp_path: Path) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server(
            "crashy",
            ["--crash-after", "0.3"],
            backoff_base=3.0,
            backoff_cap=3.0,
        )
        with env.bus.subscribe(ServerCrashed, ServerStateChanged) as events:
            await server.start(wait=False)
            await next_event(events, ServerCrashed)
            assert server.state is S.CRASHED
            assert await server.stop() is S.STOPPED
        # the restart that was due in 3 s must not happen
        with env.bus.subscribe(ServerStateChanged) as later:
            try:
                event = await next_event(later, ServerStateChanged, timeout=3.5)
            except TimeoutError:
                event = None
        assert event is None and server.state is S.STOPPED
