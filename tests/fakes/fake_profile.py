"""A game profile for the fake game server: the smallest real implementation of GameProfile."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.errors import ExecutableNotAllowed, ExecutableNotFound
from core.events import EventBus
from core.games.base import (
    ConfigFile,
    GameLink,
    LaunchSpec,
    LogSourceSpec,
    PortNeed,
    RuntimeControl,
    ServerContext,
)

GAME_SERVER = Path(__file__).with_name("game_server.py")
LAUNCHERS = {
    # `#!/usr/bin/env python3`: env execs the interpreter (and pyenv's shim execs again)
    "env": GAME_SERVER,
    # a sh script that ends in `exec` of the game
    "wrapper": GAME_SERVER.parent / "launchers" / "wrapper.sh",
    # `#!/usr/bin/env sh` -> exec wrapper.sh -> exec the env-shebang game
    "chain": GAME_SERVER.parent / "launchers" / "chain.sh",
}
"""Ways real servers are started: every one changes the command line after spawn."""
READY = re.compile(r"^READY$")


class FakeSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    args: list[str] = Field(default_factory=list)
    ports: list[tuple[int, str]] = Field(default_factory=list)
    port: int = Field(default=40000, ge=1024, le=65535)
    password: str = ""
    launcher: str = ""
    """One of LAUNCHERS, or empty to run the interpreter directly."""


class FakeProfile:
    """Settings used: `args` (list of fake server flags), `ports` (list of [port, proto])."""

    name = "fake"
    settings_model = FakeSettings
    secret_keys = frozenset({"password"})
    default_port = 40000
    port_stride = 10

    def __init__(
        self,
        executable: Path | None = None,
        allowed: frozenset[str] = frozenset({Path(sys.executable).name}),
    ) -> None:
        self._executable = executable or Path(sys.executable)
        self._allowed = allowed | {path.name for path in LAUNCHERS.values()}

    def executable(self) -> Path:
        return self._executable

    def check_executable(self) -> None:
        if self._executable.name not in self._allowed:
            raise ExecutableNotAllowed(f"{self._executable.name} is not an allowed executable")
        if not self._executable.is_file():
            raise ExecutableNotFound(f"the executable {self._executable.name} does not exist")

    def ports(self, ctx: ServerContext) -> Sequence[PortNeed]:
        needs: list[PortNeed] = []
        for port, proto in ctx.settings.get("ports", []):
            if proto not in ("udp", "tcp"):
                raise ValueError(f"a port's protocol is udp or tcp, not {proto!r}")
            needs.append(PortNeed(int(port), "udp" if proto == "udp" else "tcp", "game"))
        return needs

    def files(self, ctx: ServerContext) -> Sequence[ConfigFile]:
        return [ConfigFile(ctx.folder / "fake.cfg", b"name = fake;\n")]

    def prepare(self, ctx: ServerContext) -> None:
        return None

    def launch(self, ctx: ServerContext) -> LaunchSpec:
        args = [str(a) for a in ctx.settings.get("args", [])]
        console = "--console" in args
        launcher = ctx.settings.get("launcher") or ""
        if launcher:
            argv: tuple[str, ...] = (str(LAUNCHERS[launcher]), "--name", ctx.name, *args)
        else:
            argv = (str(self._executable), "-u", str(GAME_SERVER), "--name", ctx.name, *args)
        return LaunchSpec(argv=argv, cwd=ctx.folder, console=console)

    def log_sources(self, ctx: ServerContext) -> Sequence[LogSourceSpec]:
        path = ctx.folder / "console.log"
        return [LogSourceSpec("console", lambda: path if path.exists() else None, rotate=True)]

    async def graceful_stop(self, ctx: ServerContext, control: RuntimeControl) -> None:
        if "--console" in [str(a) for a in ctx.settings.get("args", [])]:
            control.write_console("stop")

    async def wait_ready(self, ctx: ServerContext, control: RuntimeControl) -> None:
        await control.wait_for_line(READY, timeout=3600)

    async def open_link(
        self, ctx: ServerContext, control: RuntimeControl, bus: EventBus
    ) -> GameLink | None:
        return None
