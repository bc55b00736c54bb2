"""Set-up for Minecraft integration tests: the real supervisor running the fake server.

`minecraft_env(tmp_path)` is `supervised()` with a MinecraftProfile whose command is
`[<tmp>/java, -jar, server.jar, nogui]`, `java` being tests/fakes/minecraft_server.py;
`add_minecraft(env, name, port=...)` creates a game "minecraft" server row with its
settings, its encrypted RCON password, an accepted `eula.txt` and a `server.jar`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from core.games.base import GameLink
from core.games.minecraft import MinecraftProfile
from core.secrets import SecretBox
from core.supervisor.server import ManagedServer
from data.repositories.servers import ServerRepository
from data.repositories.settings import SecretRepository, SettingsRepository
from tests.fakes.minecraft_server import write_java
from tests.integration.supervision import FAST, Env, supervised

__all__ = ["add_minecraft", "free_port", "minecraft_env", "wait_link"]


def free_port() -> int:
    """A TCP port free on every interface right now (the game binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def minecraft_env(
    tmp_path: Path, *, key: bytes | None = None, link_timeout: float = 5.0
) -> AsyncIterator[Env]:
    java = write_java(tmp_path)
    profile = MinecraftProfile(
        [str(java), "-jar", "server.jar", "nogui"], link_timeout=link_timeout
    )
    async with supervised(tmp_path, [profile], key=key) as env:
        yield env


async def add_minecraft(
    env: Env,
    name: str,
    *,
    port: int,
    rcon_password: str | None = None,
    rcon_port: int | None = None,
    eula: bool = True,
    jar: bool = True,
    **settings: Any,
) -> ManagedServer:
    record = await ServerRepository(env.db).create(name, "minecraft")
    values: dict[str, Any] = {**FAST, "port": port, **settings}
    if rcon_password is not None:
        values.update(enable_rcon=True, rcon_port=rcon_port)
        token = SecretBox(env.key).encrypt(rcon_password)
        await SecretRepository(env.db).put(record.id, "rcon_password", token)
    await SettingsRepository(env.db).set_many(record.id, values)
    folder = env.supervisor.folder_for(name)
    folder.mkdir(parents=True, exist_ok=True)
    if eula:
        (folder / "eula.txt").write_text("eula=true\n")
    if jar:
        (folder / "server.jar").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    return await env.supervisor.add(record)


async def wait_link(server: ManagedServer, timeout: float = 10.0) -> GameLink:
    async with asyncio.timeout(timeout):
        while server.link is None:
            await asyncio.sleep(0.02)
    return server.link
