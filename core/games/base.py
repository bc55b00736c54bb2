"""The small interface every game implements, so the supervisor knows nothing about games.

A profile turns a server's settings into files, ports, a launch command and log sources,
and knows how to stop its game gracefully and tell when it is ready.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

__all__ = [
    "ConfigFile",
    "GameProfile",
    "LaunchSpec",
    "LogSourceSpec",
    "PortNeed",
    "ProfileRegistry",
    "ReadyProbe",
    "RuntimeControl",
    "ServerContext",
]


@dataclass(frozen=True, slots=True)
class ServerContext:
    """What a profile may know about one server."""

    server_id: int
    name: str
    folder: Path
    settings: Mapping[str, Any]
    secrets: Mapping[str, str] = field(repr=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class PortNeed:
    port: int
    protocol: Literal["udp", "tcp"]
    purpose: str


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A file to write before start; `secret` files get mode 0600."""

    path: Path
    content: bytes = field(repr=False)
    secret: bool = False


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """A command line as a list (never a shell string), its folder and extra environment."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    console: bool = False
    """True when the game reads commands on stdin: it then gets a FIFO."""


@dataclass(frozen=True, slots=True)
class LogSourceSpec:
    name: str
    locate: Callable[[], Path | None]


class RuntimeControl(Protocol):
    """What a profile may do to its running process during stop and readiness."""

    @property
    def pid(self) -> int: ...

    def is_alive(self) -> bool: ...

    def write_console(self, line: str) -> None: ...

    async def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> str: ...


ReadyProbe = Callable[[RuntimeControl], Awaitable[None]]


class GameProfile(Protocol):
    """One game. Implementations live in core/games/ (and a test one under tests/)."""

    name: str

    def executable(self) -> Path: ...

    def check_executable(self) -> None:
        """Raise ExecutableNotFound / ExecutableNotAllowed with a user-safe reason."""

    def ports(self, ctx: ServerContext) -> Sequence[PortNeed]: ...

    def files(self, ctx: ServerContext) -> Sequence[ConfigFile]: ...

    def prepare(self, ctx: ServerContext) -> None:
        """Clean up before a start (e.g. stale files a hard kill left behind)."""

    def launch(self, ctx: ServerContext) -> LaunchSpec: ...

    def log_sources(self, ctx: ServerContext) -> Sequence[LogSourceSpec]: ...

    async def graceful_stop(self, ctx: ServerContext, control: RuntimeControl) -> None:
        """Ask the game to shut down on its own; the supervisor escalates if it does not."""

    async def wait_ready(self, ctx: ServerContext, control: RuntimeControl) -> None:
        """Return once the game is ready; the supervisor bounds it with a timeout."""


class ProfileRegistry:
    """Games by name; the operator's settings decide which profiles are offered."""

    def __init__(self, profiles: Sequence[GameProfile] = ()) -> None:
        self._profiles: dict[str, GameProfile] = {p.name: p for p in profiles}

    def add(self, profile: GameProfile) -> None:
        self._profiles[profile.name] = profile

    def get(self, name: str) -> GameProfile:
        return self._profiles[name]

    def names(self) -> list[str]:
        return sorted(self._profiles)

    def __contains__(self, name: object) -> bool:
        return name in self._profiles
