"""What the server service hands the front end: frozen views, never a ManagedServer itself."""

from __future__ import annotations

from dataclasses import dataclass

from core.services.settings_keys import Effect
from core.supervisor.states import ServerState

__all__ = [
    "ActionResult",
    "CreatedServer",
    "DeletedServer",
    "ServerCondition",
    "ServerRef",
    "ServerStatus",
    "ServerSummary",
    "SetResult",
    "SettingView",
]


@dataclass(frozen=True, slots=True)
class CreatedServer:
    id: int
    name: str
    game: str
    port: int
    generated_secrets: tuple[str, ...]
    """Names (never values) of the secrets generated for it, e.g. `rcon_password`."""
    host: str = "local"


@dataclass(frozen=True, slots=True)
class DeletedServer:
    name: str
    archived_to: str | None
    """The archive folder relative to the data folder; None when there was no folder."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    name: str
    action: str
    state: ServerState
    reason: str
    ok: bool
    """False when the server ended crashed or failed (e.g. it never became ready)."""


@dataclass(frozen=True, slots=True)
class SettingView:
    key: str
    value: str
    """As shown: secrets are `••••••` when set and `(not set)` otherwise."""
    description: str
    effect: Effect
    secret: bool
    is_default: bool


@dataclass(frozen=True, slots=True)
class SetResult:
    key: str
    value: str
    """As shown (masked for secrets)."""
    effect: Effect
    next_start: bool
    """True when the server is up now and only picks the value up at its next start."""
    message: str


@dataclass(frozen=True, slots=True)
class ServerRef:
    """Which server a command is about, without handing the front end the server itself."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class ServerCondition:
    """What alerts need of a server: its state, and whether maintenance mutes it."""

    state: ServerState
    paused: bool


@dataclass(frozen=True, slots=True)
class ServerSummary:
    name: str
    game: str
    state: ServerState
    state_reason: str
    uptime: float | None
    address: str
    paused: bool
    host: str = "local"
    """The host (hosts.toml) the server runs on."""
    host_unreachable: bool = False
    """Its host does not answer: `state` is only the last known one (show "unknown")."""


@dataclass(frozen=True, slots=True)
class ServerStatus:
    name: str
    game: str
    state: ServerState
    state_reason: str
    uptime: float | None
    pid: int | None
    players_online: int | None
    """None when no link to the game is open (or it did not answer)."""
    players_max: int | None
    player_names: tuple[str, ...]
    mission: str | None
    cpu_percent: float | None
    rss_bytes: int | None
    address: str
    paused: bool
    started_at: float | None = None
    """When the running process started (epoch seconds); None when there is none."""
    headless: tuple[int, int] | None = None
    """Arma 3 headless clients (running, wanted) while the server runs with some; else None."""
    host: str = "local"
    host_unreachable: bool = False
    """Its host does not answer: `state` is only the last known one (show "unknown")."""
