"""One log of record per game: every line the game logs arrives exactly once.

Real processes (the fake games started by the supervisor through their shims), real files.
Each test counts the arrivals of every line through the `LogLines` events on the bus.
"""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from pathlib import Path

from core.events import LogLines, ServerCrashed, Subscription
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from tests.integration.arma3_env import (
    add_arma3_server,
    arma3_supervised,
    fake_state,
    layout_of,
    wait_for,
    wait_for_link,
)
from tests.integration.minecraft_env import add_minecraft, free_port, minecraft_env, wait_link
from tests.integration.supervision import Env

S = ServerState


def drain(events: Subscription, server: ManagedServer) -> list[LogLines]:
    """The LogLines of `server` already queued on `events`."""
    found: list[LogLines] = []
    while (event := events.get_nowait()) is not None:
        if isinstance(event, LogLines) and event.server_id == server.id:
            found.append(event)
    return found


def arrivals(batches: list[LogLines]) -> collections.Counter[str]:
    return collections.Counter(line.text for batch in batches for line in batch.lines)


def file_lines(path: Path) -> collections.Counter[str]:
    return collections.Counter(path.read_text(encoding="utf-8").splitlines())


async def settle(env: Env) -> None:
    """Everything the games wrote is read and published."""
    await env.supervisor.watcher.flush()


# -- Minecraft ----------------------------------------------------------------------------------


async def test_minecraft_lines_arrive_exactly_once(tmp_path: Path) -> None:
    """Vanilla writes each line to stdout AND logs/latest.log: only one of them is tailed."""
    marker = f"marker-{uuid.uuid4().hex}"
    async with minecraft_env(tmp_path) as env:
        server = await add_minecraft(env, "once", port=free_port(), stop_timeout=10.0)
        folder = env.supervisor.folder_for("once")
        with env.bus.subscribe(LogLines) as events:
            assert await server.start() is S.RUNNING
            link = await wait_link(server)
            await link.say(marker)
            console = folder / "console.log"
            await wait_for(lambda: marker in console.read_text(encoding="utf-8"))
            assert await server.stop() is S.STOPPED
            await settle(env)
            batches = drain(events, server)
        seen = arrivals(batches)
        assert sum(marker in text for text in seen.elements()) == 1, "the line came twice"
        latest = file_lines(folder / "logs" / "latest.log")
        assert latest, "the game wrote its own log file too"
        for text, count in latest.items():
            assert seen[text] == count, f"{text!r} arrived {seen[text]} times, logged {count}"
        assert seen == file_lines(folder / "console.log"), "stdout is the log of record"
        assert {batch.source for batch in batches} == {"console"}


# -- Arma 3 -------------------------------------------------------------------------------------


async def test_arma3_on_linux_logs_come_from_stdout(tmp_path: Path) -> None:
    """The Linux server writes no RPT: the logs, tail, search and crash lines use stdout."""
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_arma3_server(env, "linux", backoff_base=5.0)
        layout = layout_of(env, server)
        with env.bus.subscribe(LogLines, ServerCrashed) as events:
            assert await server.start() is S.RUNNING
            link = await wait_for_link(server)
            assert (await fake_state(server))["rpt"] is None
            await link.command("fake.crash 7")
            batches: list[LogLines] = []
            async with asyncio.timeout(10):
                while not isinstance(event := await events.get(), ServerCrashed):
                    if isinstance(event, LogLines) and event.server_id == server.id:
                        batches.append(event)
            crash = event
            batches += drain(events, server)
        assert layout.newest_rpt() is None, "the Linux server writes no RPT"
        assert any("Fake crash requested" in line for line in crash.last_lines)
        seen = arrivals(batches)
        assert seen == file_lines(layout.console_log), "each stdout line exactly once"
        assert any("Dedicated host created." in text for text in seen)
        assert {batch.source for batch in batches} == {"console"}
        tail = await server.logs.tail(5)
        assert any("Fake crash requested" in text for text in tail)
        found, _ = await server.logs.search("dedicated HOST created", 5)
        assert len(found) == 1


async def test_arma3_windows_style_rpt_and_stdout_give_each_line_once(tmp_path: Path) -> None:
    """A Windows build writes an RPT and repeats it to stdout: one of the two, never both."""
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_arma3_server(env, "windows", knobs={"windows": True})
        layout = layout_of(env, server)
        with env.bus.subscribe(LogLines) as events:
            assert await server.start() is S.RUNNING
            await wait_for_link(server)
            await asyncio.sleep(1.0)  # past the RPT's grace: a wrong choice would show now
            assert await server.stop() is S.STOPPED
            await settle(env)
            batches = drain(events, server)
        rpt = layout.newest_rpt()
        assert rpt is not None, "the Windows style writes an RPT"
        seen = arrivals(batches)
        assert seen == file_lines(rpt), "each line of the start exactly once"
        assert {batch.source for batch in batches} == {"console"}, "stdout had the log"
        choice = json.loads((layout.folder / ".languard-log-choice.json").read_text())
        assert (choice["rpt"], choice["choice"]) == (rpt.name, "console")


async def test_arma3_windows_style_with_a_silent_stdout_uses_the_rpt(tmp_path: Path) -> None:
    async with arma3_supervised(tmp_path) as (env, _):
        server = await add_arma3_server(env, "quiet", knobs={"windows": True, "stdout": False})
        layout = layout_of(env, server)
        with env.bus.subscribe(LogLines) as events:
            assert await server.start() is S.RUNNING
            await wait_for_link(server)
            rpt = layout.newest_rpt()
            assert rpt is not None
            seen: list[LogLines] = []

            def has_all() -> bool:
                seen.extend(drain(events, server))
                return sum(arrivals(seen).values()) >= sum(file_lines(rpt).values())

            await wait_for(has_all, timeout=10)
            assert await server.stop() is S.STOPPED
            await settle(env)
            seen.extend(drain(events, server))
        assert arrivals(seen) == file_lines(rpt), "every RPT line exactly once"
        assert {batch.source for batch in seen} == {"rpt"}
        assert layout.console_log.stat().st_size == 0
