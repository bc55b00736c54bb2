"""Set-up for ban-merge tests: a started BanService over the real supervisor and a fake game.

async with arma3_bans(tmp_path) as w:          # or minecraft_bans(tmp_path)
    server = await add_arma3_server(w.env, "alpha")
    ...
    await w.bans.sync_now(server.id)           # a full import + sync, finished on return
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from core.services.audit import AuditLog
from core.services.bans import BanService
from data.repositories.history import AuditEntry, AuditRepository
from tests.integration.arma3_env import arma3_supervised
from tests.integration.minecraft_env import minecraft_env
from tests.integration.supervision import Env

__all__ = ["BanWorld", "arma3_bans", "eventually", "minecraft_bans"]


class WallClock:
    """The services' clock: real time at first, then only moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class BanWorld:
    env: Env
    bans: BanService
    audit: AuditLog
    clock: WallClock

    async def audited(self, action: str) -> list[AuditEntry]:
        return [e for e in reversed(await self.audit.recent(200)) if e.action == action]


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait (bounded) until `check` holds; polls, so a busy machine only makes it slower."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.05)


@asynccontextmanager
async def _started(env: Env) -> AsyncIterator[BanWorld]:
    clock = WallClock()
    audit = AuditLog(AuditRepository(env.db))
    bans = BanService(env.supervisor, env.db, env.bus, audit, clock=clock, expiry_interval=3600.0)
    await bans.start()
    try:
        yield BanWorld(env, bans, audit, clock)
    finally:
        async with asyncio.timeout(15):
            await bans.close()


@asynccontextmanager
async def arma3_bans(tmp_path: Path) -> AsyncIterator[BanWorld]:
    async with arma3_supervised(tmp_path) as (env, _), _started(env) as world:
        yield world


@asynccontextmanager
async def minecraft_bans(tmp_path: Path) -> AsyncIterator[BanWorld]:
    async with minecraft_env(tmp_path) as env, _started(env) as world:
        yield world
