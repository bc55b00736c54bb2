"""Shared set-up for supervisor tests: a real database, a real supervisor, fake game servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from core.events import Event, EventBus, Subscription
from core.games.base import GameProfile, ProfileRegistry
from core.secrets import SecretBox
from core.supervisor.server import ManagedServer
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.fakes.fake_profile import FakeProfile

FAST = {
    "stop_timeout": 2.0,
    "term_timeout": 1.0,
    "start_timeout": 10.0,
    "backoff_base": 0.1,
    "backoff_cap": 0.5,
    "crash_window": 60.0,
}


@dataclass
class Env:
    db: Database
    bus: EventBus
    supervisor: Supervisor
    data_dir: Path
    key: bytes

    async def add_server(
        self, name: str, args: Sequence[str] = (), **settings: Any
    ) -> ManagedServer:
        record = await ServerRepository(self.db).create(name, "fake")
        await SettingsRepository(self.db).set_many(
            record.id, {**FAST, "args": list(args), **settings}
        )
        return await self.supervisor.add(record)


@asynccontextmanager
async def supervised(
    tmp_path: Path,
    profiles: Sequence[GameProfile] | None = None,
    key: bytes | None = None,
    **kwargs: Any,
) -> AsyncIterator[Env]:
    """A started supervisor; on exit every game process it knows of is killed."""
    data_dir = tmp_path / "data"
    db = await Database.open(data_dir / "languard.db")
    bus = EventBus()
    key = key or Fernet.generate_key()
    supervisor = Supervisor(
        db=db,
        bus=bus,
        data_dir=data_dir,
        profiles=ProfileRegistry(list(profiles or [FakeProfile()])),
        secret_box=SecretBox(key),
        checkpoint_interval=0.2,
        **kwargs,
    )
    await supervisor.start()
    try:
        yield Env(db, bus, supervisor, data_dir, key)
    finally:
        pids = [s.handle.pid for s in supervisor.all() if s.handle and s.handle.pid is not None]
        pids += [pid for s in supervisor.all() for pid in s.companions.pids()]
        await supervisor.close()
        await db.close()
        kill_groups(pids)


def kill_groups(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


async def next_event(sub: Subscription, kind: type[Event], timeout: float = 10.0) -> Any:
    """The next event of `kind` (others are skipped), within `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            event = await sub.get()
            if isinstance(event, kind):
                return event


def spawn_host(db: Path, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    """A separate bot-like process running only the supervisor (tests.fakes.supervisor_host),
    so a test can kill -9 it for real; its log goes to `<data_dir>/../host.log`."""
    with (data_dir.parent / "host.log").open("a") as log:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.fakes.supervisor_host", "--db", str(db)),
                *("--data-dir", str(data_dir), *extra),
            ],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )


def start_host(db: Path, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    """`spawn_host`, returning once the host says UP (every server re-adopted or started)."""
    proc = spawn_host(db, data_dir, *extra)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "UP", (data_dir.parent / "host.log").read_text()
    return proc
