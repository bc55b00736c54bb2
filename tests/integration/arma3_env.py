"""Set-up for Arma 3 tests: the fake server behind a real supervisor, real SQLite, real UDP.

async with arma3_supervised(tmp_path) as (env, profile):
    server = await add_arma3_server(env, "alpha", motd="hi")
    await server.start()
    state = await fake_state(server)      # what the fake game believes
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from core.games.arma3 import Arma3Profile
from core.games.arma3_layout import Arma3Layout
from core.games.arma3_link import RconOptions
from core.secrets import SecretBox
from core.supervisor.ports import port_is_free
from core.supervisor.server import ManagedServer
from data.repositories.servers import ServerRepository
from data.repositories.settings import SecretRepository, SettingsRepository
from tests.fakes.arma3_bin import write_fake_arma3
from tests.integration.supervision import FAST, Env, supervised
from tests.ports import random_port_block

__all__ = [
    "ARMA_FAST",
    "RCON_PASSWORD",
    "add_arma3_server",
    "arma3_supervised",
    "fake_state",
    "fast_profile",
    "free_arma_ports",
    "game_log_text",
    "layout_of",
    "wait_for",
    "wait_for_link",
]

RCON_PASSWORD = "rc0n-Secret"
ARMA_FAST = {**FAST, "liveness_interval": 0, "start_timeout": 15.0}
FAST_RCON = RconOptions(timeout=0.3, retries=1, keepalive_interval=5.0, guid_wait=1.0)


def free_arma_ports() -> tuple[int, int]:
    """A game port P with P..P+4 free and an RCon port (P+10) free, picked at random."""

    def free(base: int) -> bool:
        ports = [base + i for i in range(5)] + [base + 10]
        return all(port_is_free(p, "udp") and port_is_free(p, "udp", "127.0.0.1") for p in ports)

    base = random_port_block(20, free)
    return base, base + 10


def fast_profile(executable: Path) -> Arma3Profile:
    return Arma3Profile(
        executable, rcon=FAST_RCON, ready_poll=0.1, ready_attempt_timeout=0.3, rpt_grace=0.5
    )


@asynccontextmanager
async def arma3_supervised(tmp_path: Path) -> AsyncIterator[tuple[Env, Arma3Profile]]:
    """A supervisor with the Arma 3 profile pointed at the fake `arma3server_x64`."""
    profile = fast_profile(write_fake_arma3(tmp_path / "bin"))
    async with supervised(tmp_path, [profile]) as env:
        yield env, profile


async def add_arma3_server(
    env: Env,
    name: str,
    *,
    secrets: dict[str, str] | None = None,
    knobs: dict[str, Any] | None = None,
    **settings: Any,
) -> ManagedServer:
    """Create an `arma3` server: its row, settings (fast lifecycle, free ports unless given)
    and Fernet-encrypted secrets (an RCon password unless `secrets` says otherwise).
    `knobs` go into the fake's `fake_arma3.json` (e.g. `rcon_delay`; `windows` for an RPT:
    by default the fake logs to stdout only, like the Linux server)."""
    record = await ServerRepository(env.db).create(name, "arma3")
    if "port" not in settings:
        settings["port"], settings["rcon_port"] = free_arma_ports()
    await SettingsRepository(env.db).set_many(record.id, {**ARMA_FAST, **settings})
    box = SecretBox(env.key)
    repo = SecretRepository(env.db)
    for key, value in ({"rcon_password": RCON_PASSWORD} if secrets is None else secrets).items():
        await repo.put(record.id, key, box.encrypt(value))
    if knobs:
        folder = env.supervisor.folder_for(name)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "fake_arma3.json").write_text(json.dumps(knobs))
    return await env.supervisor.add(record)


def layout_of(env: Env, server: ManagedServer) -> Arma3Layout:
    return Arma3Layout.of(env.supervisor.folder_for(server.name))


def game_log_text(env: Env, server: ManagedServer) -> str:
    """The game's own log: its stdout (console.log, every start) on Linux, where the server
    writes no RPT; for a Windows-style fake with a silent stdout, the newest RPT."""
    layout = layout_of(env, server)
    text = layout.console_log.read_text(encoding="utf-8") if layout.console_log.exists() else ""
    rpt = layout.newest_rpt()
    return text if text or rpt is None else rpt.read_text(encoding="utf-8")


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def wait_for_link(server: ManagedServer, timeout: float = 10.0) -> Any:
    await wait_for(lambda: server.link is not None and server.link.connected, timeout)
    return server.link


async def fake_state(server: ManagedServer) -> dict[str, Any]:
    """The fake game's own view (mission, players, ban list) over RCon."""
    link = await wait_for_link(server)
    return dict(json.loads(await link.command("fake.state")))
