"""A failed write never wedges a server: the process and the state agree after any failure.

Seen before: one SQLite write failing mid-transition (busy timeout, disk full) left the
game running with no exit watcher and the row `starting` without a pid; a kill stuck in
`stopping` with no process; a crash never recorded, the server `running` with no process
and `delete` refused. Reproduced here with a real 1 MB tmpfs that fills up, and with an
injected "database or disk is full" at the repository boundary where a test must aim at
one exact write.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import StartRefused
from core.events import StorageTrouble
from core.supervisor.process import identity_of
from core.supervisor.states import ServerState
from data.repositories.history import HistoryRepository
from data.repositories.servers import ServerRepository
from tests.integration.supervision import kill_groups, next_event, supervised

S = ServerState


def _full(*_: Any, **__: Any) -> Any:
    raise sqlite3.OperationalError("database or disk is full")


async def _settle(predicate: Any, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def _row_matches(env: Any, server: Any, timeout: float = 15.0) -> None:
    """Wait until the database row says what the server in memory says."""
    repo = ServerRepository(env.db)
    async with asyncio.timeout(timeout):
        while True:
            record = await repo.get(server.id)
            assert record is not None
            pid = None if record.process is None else record.process.pid
            live = None if server.handle is None else server.handle.pid
            if record.state is server.state and pid == live and not server.keeper.behind:
                return
            await asyncio.sleep(0.05)


async def test_a_lost_pid_write_keeps_the_exit_watcher_and_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server("alpha", auto_restart=False)
        with env.bus.subscribe(StorageTrouble) as trouble:
            monkeypatch.setattr(ServerRepository, "set_process", _full)
            assert await server.start() is S.RUNNING
            assert server.handle is not None
            pid = server.handle.pid
            alert = await next_event(trouble, StorageTrouble)
            assert alert.disk_full and not alert.recovered
            # the game dies: the watcher set before the failed write still sees it
            os.killpg(pid, signal.SIGKILL)
            await _settle(lambda: server.state is S.CRASHED)
            monkeypatch.undo()
            back = await next_event(trouble, StorageTrouble)
            assert back.recovered
            assert trouble.get_nowait() is None, "one alert for the trouble, one for its end"
        await _row_matches(env, server)


async def test_a_kill_while_every_write_fails_ends_stopped_with_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server("alpha")
        assert await server.start() is S.RUNNING
        assert server.handle is not None
        pid = server.handle.pid
        for repo, name in (
            (ServerRepository, "set_process"),
            (ServerRepository, "set_state"),
            (HistoryRepository, "add"),
        ):
            monkeypatch.setattr(repo, name, _full)
        assert await server.stop(kill=True) is S.STOPPED
        assert identity_of(pid) is None
        assert server.handle is None
        monkeypatch.undo()
        await _row_matches(env, server)
        # every command works again
        assert await server.start() is S.RUNNING
        assert await server.stop() is S.STOPPED


async def test_a_crash_while_every_write_fails_is_still_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with supervised(tmp_path) as env:
        server = await env.add_server("alpha", auto_restart=False)
        assert await server.start() is S.RUNNING
        assert server.handle is not None
        pid = server.handle.pid
        for repo, name in (
            (ServerRepository, "set_process"),
            (ServerRepository, "set_state"),
            (HistoryRepository, "add"),
        ):
            monkeypatch.setattr(repo, name, _full)
        os.killpg(pid, signal.SIGKILL)
        await _settle(lambda: server.state is S.CRASHED)
        assert server.handle is None
        monkeypatch.undo()
        await _row_matches(env, server)
        # and it is not stuck: delete's precondition (a resting server) holds
        assert server.state not in (S.RUNNING, S.STARTING, S.STOPPING)


async def test_a_bot_that_dies_before_the_pid_is_written_finds_its_game_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row has no pid: the next bot must adopt, not call it crashed and start a second
    copy that cannot bind the port."""
    key = b""
    async with supervised(tmp_path) as env:
        key = env.key
        server = await env.add_server("alpha", launcher="env")
        monkeypatch.setattr(ServerRepository, "set_process", _full)
        await server.start()
        assert server.handle is not None
        pid = server.handle.pid
        record = await ServerRepository(env.db).get(server.id)
        assert record is not None and record.process is None
        # the bot goes away with the row behind (its last try fails too)
        await env.supervisor.close()
        env.supervisor._servers.clear()
        monkeypatch.undo()
    try:
        assert identity_of(pid) is not None
        async with supervised(tmp_path, key=key) as env:
            again = env.supervisor.get(server.id)
            await _settle(lambda: again.state is S.RUNNING)
            assert again.handle is not None and again.handle.pid == pid
            await _row_matches(env, again)
            assert await again.stop() is S.STOPPED
            assert identity_of(pid) is None
    finally:
        kill_groups([pid])


# -- a real full disk ----------------------------------------------------------------------


@contextlib.contextmanager
def tiny_disk(path: Path, size: str = "4m") -> Iterator[bool]:
    """A tmpfs of `size` at `path` (True), or a plain folder when mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(folder: Path) -> Path:
    """Write until the disk says ENOSPC; returns the filler (delete it to free the disk)."""
    filler = folder / "filler"
    chunk = b"\0" * 4096
    try:
        with filler.open("wb") as out:
            while True:
                out.write(chunk)
                out.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    return filler


async def test_a_full_disk_is_an_alert_never_a_wedge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tiny_disk(tmp_path / "disk") as mounted:
        async with supervised(tmp_path / "disk") as env:
            server = await env.add_server("alpha", ["--interval", "1"], backoff_base=0.2)
            assert await server.start() is S.RUNNING
            assert server.handle is not None
            pid = server.handle.pid
            with env.bus.subscribe(StorageTrouble) as trouble:
                if mounted:
                    filler = fill(tmp_path / "disk")
                else:  # no mount allowed here: the same failure, injected
                    for repo, name in (
                        (ServerRepository, "set_process"),
                        (ServerRepository, "set_state"),
                        (HistoryRepository, "add"),
                    ):
                        monkeypatch.setattr(repo, name, _full)
                os.killpg(pid, signal.SIGKILL)
                # the crash is seen; the automatic restart cannot be recorded, so it is
                # refused and the server says failed instead of half-starting
                await _settle(lambda: server.state is S.FAILED, 30)
                alert = await next_event(trouble, StorageTrouble)
                assert alert.disk_full
                with pytest.raises(StartRefused, match=r"No space left|database cannot be written"):
                    await server.start()
                assert server.state is S.FAILED and server.handle is None
                if mounted:
                    filler.unlink()
                else:
                    monkeypatch.undo()
                assert (await next_event(trouble, StorageTrouble, 30)).recovered
            await _row_matches(env, server)
            assert await server.start() is S.RUNNING
            assert await server.stop() is S.STOPPED
