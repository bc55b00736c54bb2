"""A mod library below Discord for integration tests: the fake SteamCMD (a real child
process), the fake Workshop API, the fake Arma 3 under the real supervisor, and the real
ModService over them. Shared by the library's tests and the update tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.games.arma3 import Arma3Profile
from core.jobs import JobQueue
from core.services.audit import AuditLog
from core.services.mods import ModService
from core.steam import RetryPolicy, SteamAccount, SteamCmd, WorkshopClient
from data.repositories.history import AuditRepository
from data.repositories.mods import ModRepository
from tests.fakes.steamcmd_bin import FakeSteamCmd, install_fake_steamcmd
from tests.fakes.workshop_api import FakeWorkshopApi, fake_workshop_api
from tests.integration.arma3_env import arma3_supervised
from tests.integration.supervision import Env

__all__ = ["PASSWORD", "ModLibrary", "mod_library"]

PASSWORD = "Pa55 w0rd!xyzzy"
"""The Steam account's password, as the fake SteamCMD expects it."""


@dataclass
class ModLibrary:
    env: Env
    profile: Arma3Profile
    service: ModService
    steam: SteamCmd
    jobs: JobQueue
    fake: FakeSteamCmd
    api: FakeWorkshopApi
    audit: AuditLog
    install: Path
    """The fake game's install folder (its `keys/` holds the game's own a3.bikey)."""


@asynccontextmanager
async def mod_library(
    tmp_path: Path,
    steam_items: Mapping[str, Mapping[str, Any]],
    api_items: Mapping[int, Mapping[str, Any]],
    policy: RetryPolicy,
) -> AsyncIterator[ModLibrary]:
    """`steam_items`: what the fake SteamCMD serves (by item id as text); `api_items`: what
    the fake Workshop API says of them. Closed (jobs, then the service) at the end."""
    fake = install_fake_steamcmd(
        tmp_path / "steamcmd",
        {"accounts": {"opsteam": {"password": PASSWORD}}, "items": dict(steam_items)},
    )
    async with (
        fake_workshop_api(dict(api_items)) as api,
        arma3_supervised(tmp_path) as (env, profile),
    ):
        install = profile.executable().parent
        (install / "keys").mkdir()
        (install / "keys" / "a3.bikey").write_bytes(b"bis-key")
        steam = SteamCmd(
            fake.executable,
            SteamAccount("opsteam", SecretStr(PASSWORD)),
            work_dir=tmp_path / "steamwork",
            policy=policy,
            poll_interval=0.05,
        )
        audit = AuditLog(AuditRepository(env.db))
        jobs = JobQueue()
        service = ModService(
            env.supervisor,
            ModRepository(env.db),
            audit,
            jobs,
            WorkshopClient(api.url),
            root=tmp_path / "mods",
            steam=steam,
            base_keys=install / "keys",
        )
        try:
            yield ModLibrary(env, profile, service, steam, jobs, fake, api, audit, install)
        finally:
            await jobs.close()
            await service.close()
