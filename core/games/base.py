"""The small interface every game implements, so the supervisor knows nothing about games.

A profile turns a server's settings into files, ports, a launch command and log sources,
and knows how to stop its game gracefully and tell when it is ready.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from core.events import EventBus

__all__ = [
    "BanFiles",
    "BanKind",
    "CompanionSpec",
    "Companions",
    "ConfigFile",
    "GameBan",
    "GameLink",
    "GameProfile",
    "LaunchSpec",
    "LogSourceSpec",
    "OnlinePlayer",
    "PortNeed",
    "ProfileRegistry",
    "ReadyProbe",
    "RuntimeControl",
    "ServerContext",
]


class BanKind(StrEnum):
    GUID = "guid"  # BattlEye GUID (32 hex)
    IP = "ip"
    NAME = "name"  # Minecraft player name
    UUID = "uuid"  # Minecraft UUID


@dataclass(frozen=True, slots=True)
class GameBan:
    """A ban as a game sees it; the bot's ledger (BanService) is the source of truth."""

    kind: BanKind
    value: str
    expires_at: float | None
    """Unix time, or None for a permanent ban."""
    reason: str = ""
    alias: str = ""
    """A found ban: another id the game lists in the same entry (the UUID beside a Minecraft
    player's name), so it matches the ledger's ban by either."""
    source: str = ""
    """A found ban: who the game says made it (Minecraft's `source`), when it says so."""
    lifted: bool = False
    """In `ServerContext.bans`: a ban the ledger lifted (removed or expired) that the game's
    files may still hold; a start takes it out of them and keeps every other entry."""


@dataclass(frozen=True, slots=True)
class OnlinePlayer:
    """A player on a running server, as the game reports it."""

    key: str
    """What the game's kick/ban commands address: the BattlEye slot number, the MC name."""
    name: str
    guid: str | None = None
    """BattlEye GUID or Minecraft UUID, when known."""
    ip: str | None = None
    ping: int | None = None
    lobby: bool = False
    verified: bool = True


@dataclass(frozen=True, slots=True)
class ServerContext:
    """What a profile may know about one server."""

    server_id: int
    name: str
    folder: Path
    settings: Mapping[str, Any]
    secrets: Mapping[str, str] = field(repr=False, default_factory=dict)
    bans: Sequence[GameBan] = ()
    """The ledger's bans for this server: the active ones are merged into the game's ban
    files before each start; the `lifted` ones are taken out; every other entry is kept."""
    unreadable_secrets: tuple[str, ...] = ()
    """Stored secrets this key cannot decrypt (a changed key, a damaged row): left out."""
    address: str | None = None
    """Where the bot reaches the game's ports (RCon) when it runs on another machine (a
    Docker host); None: this machine, the profile's own default (loopback)."""


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
class CompanionSpec:
    """A process that lives beside the running server (an Arma 3 headless client): started
    once the server is ready, restarted with it, stopped before it (core.supervisor.companions)."""

    key: str
    """Stable and unique per server (`hc-1`): names its marker and its record."""
    launch: LaunchSpec
    log_path: Path
    """Where its stdout and stderr are appended (inside the server folder)."""
    files: tuple[ConfigFile, ...] = ()
    """Written before each start of it (a secret one 0600), like the server's own."""


@dataclass(frozen=True, slots=True)
class LogSourceSpec:
    name: str
    locate: Callable[[], Path | None]
    rotate: bool = False
    """The file is the game's stdout (console.log), which Languard owns and may rotate."""


class RuntimeControl(Protocol):
    """What a profile may do to its running process during stop and readiness."""

    @property
    def pid(self) -> int | None:
        """The OS pid when this machine runs it (None: a container on another host)."""

    def is_alive(self) -> bool: ...

    def write_console(self, line: str) -> None: ...

    async def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> str: ...

    @property
    def link(self) -> GameLink | None:
        """The open command channel, if any (graceful stop uses it)."""


ReadyProbe = Callable[[RuntimeControl], Awaitable[None]]


class GameLink(Protocol):
    """A live command channel to one running game (RCon, or the console).

    Opened by the profile once the server runs; it publishes what the game tells it
    (players joining, chat, RCon lost/restored) on the bus, and the services call it.
    Every method raises a `LanguardError` subclass with a user-safe message on failure.
    """

    @property
    def connected(self) -> bool: ...

    async def command(self, text: str) -> str:
        """A raw command (`/rcon`); the reply text ("" when the game gives none)."""

    async def probe(self) -> None:
        """One liveness round trip; raises when the game does not answer."""

    async def players(self) -> list[OnlinePlayer]: ...

    async def kick(self, player: OnlinePlayer, reason: str) -> None: ...

    async def ban(self, player: OnlinePlayer, ban: GameBan) -> None:
        """Ban a player who is online now (and kick them)."""

    async def add_ban(self, ban: GameBan) -> None:
        """Ban an id (GUID, IP, name) in the running game."""

    async def remove_ban(self, ban: GameBan) -> None: ...

    async def list_bans(self) -> list[GameBan]:
        """The bans the running game holds now (expired ones left out), at most a bounded
        number, so the ledger can import those it does not know."""

    async def sync_bans(self, bans: Sequence[GameBan], lifted: Sequence[GameBan] = ()) -> None:
        """Make the running game hold every ban in `bans` and none of `lifted` (the ledger's
        lifted bans) unless `bans` has it too; every other entry of the game is left alone."""

    async def say(self, message: str) -> None:
        """A message to every player in game."""

    async def load_mission(self, template: str, difficulty: str | None) -> None:
        """Arma 3 `#mission`; other games raise `NotSupported`."""

    async def close(self) -> None: ...


class GameProfile(Protocol):
    """One game. Implementations live in core/games/ (and a test one under tests/)."""

    @property
    def name(self) -> str: ...

    @property
    def settings_model(self) -> type[BaseModel]:
        """The game's `/server set` keys as a pydantic model whose defaults run; secret keys
        (passwords) are fields too, but their values live encrypted in the secrets table."""

    @property
    def secret_keys(self) -> frozenset[str]: ...

    @property
    def default_port(self) -> int: ...

    @property
    def port_stride(self) -> int:
        """Ports one server occupies from its base port (Arma 3 leaves 100 between them)."""

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

    async def open_link(
        self, ctx: ServerContext, control: RuntimeControl, bus: EventBus
    ) -> GameLink | None:
        """Open the command channel once the server runs (None: this game has none)."""


@runtime_checkable
class Companions(Protocol):
    """A profile whose server has companion processes (Arma 3: `headless_clients`)."""

    def companions(self, ctx: ServerContext) -> Sequence[CompanionSpec]:
        """The companions this server should have now (none: an empty list)."""


@runtime_checkable
class BanFiles(Protocol):
    """A profile whose game keeps its bans in files in the server folder (bans.txt, the
    banned-*.json): what they hold is imported before a start, when no game runs."""

    def banned_in_files(self, folder: Path) -> list[GameBan]:
        """The unexpired bans in the game's ban files (bounded; unreadable ones skipped)."""


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
