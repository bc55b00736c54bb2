"""Port planning for servers: which ports a server occupies, and where a new one may go.

Why it exists apart from the ServerService: choosing a port block is plain arithmetic over a
game profile and settings (a block of `port_stride` ports from the base port, plus whatever
extra ports the profile asks for), checked against the blocks other servers hold and against
what programs on this host already listen on. Keeping it here leaves the service to gather
the other servers' settings and to audit, and keeps these rules readable in one place. A
conflict is an `InvalidInput` whose message tells the user what to do instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidInput, LanguardError
from core.games.base import GameProfile, ServerContext
from core.services.settings_schema import schema_for
from core.supervisor.ports import port_is_free

__all__ = [
    "HIGHEST_PORT",
    "LOWEST_PORT",
    "PortPlan",
    "base_port",
    "busy_on_host",
    "check_new_port",
    "free_block",
    "occupied_ports",
    "overlapping_server",
]

_log = logging.getLogger(__name__)

LOWEST_PORT = 1024
HIGHEST_PORT = 65535


@dataclass(frozen=True, slots=True)
class PortPlan:
    """Where a new server's ports may go on its host: the host's declared range, and
    whether this machine can see what listens there (`probe`: the bot's own network)."""

    low: int = LOWEST_PORT
    high: int = HIGHEST_PORT
    probe: bool = True
    host: str = "local"


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def base_port(profile: GameProfile, settings: Mapping[str, Any]) -> int:
    """The server's `port` setting, else the schema's default, else the game's default."""
    port = _as_int(settings.get("port"))
    if port is not None:
        return port
    schema = schema_for(profile)
    default = _as_int(schema.default("port")) if "port" in schema else None
    return default if default is not None else profile.default_port


def occupied_ports(
    profile: GameProfile, name: str, folder: Path, settings: Mapping[str, Any]
) -> set[int]:
    """The server's port block plus every port its profile says it needs."""
    base = base_port(profile, settings)
    ports = set(range(base, base + max(1, profile.port_stride)))
    ctx = ServerContext(0, name, folder, dict(settings))
    try:
        ports.update(need.port for need in profile.ports(ctx))
    except (LanguardError, ValueError, TypeError, KeyError) as exc:
        _log.debug("ports of %s unknown: %s", name, exc)
    return ports


def busy_on_host(profile: GameProfile, name: str, folder: Path, settings: Mapping[str, Any]) -> str:
    """The first needed port another program holds (`"UDP 2302"`), or ""."""
    base = base_port(profile, settings)
    needs = {(base, "udp"), (base, "tcp")}
    ctx = ServerContext(0, name, folder, dict(settings))
    try:
        needs.update((need.port, need.protocol) for need in profile.ports(ctx))
    except (LanguardError, ValueError, TypeError, KeyError) as exc:
        _log.debug("ports of %s unknown: %s", name, exc)
    for port, protocol in sorted(needs):
        try:
            free = port_is_free(port, protocol)
        except OSError:
            free = False
        if not free:
            return f"{protocol.upper()} {port}"
    return ""


def overlapping_server(mine: set[int], taken: Mapping[str, set[int]]) -> str | None:
    """The name of the first server in `taken` (name -> its ports) sharing a port with `mine`."""
    return next((other for other, ports in taken.items() if mine & ports), None)


def check_new_port(
    profile: GameProfile,
    name: str,
    folder: Path,
    port: int,
    taken: Mapping[str, set[int]],
    plan: PortPlan = PortPlan(),
) -> None:
    """Refuse a port chosen by the user that is out of range, overlaps a server or is in use."""
    stride = max(1, profile.port_stride)
    highest = plan.high - stride + 1
    if _as_int(port) is None or not plan.low <= port <= highest:
        if (plan.low, plan.high) != (LOWEST_PORT, HIGHEST_PORT):
            raise InvalidInput(
                "on host {host} the port must be from {low} to {highest}",
                host=plan.host,
                low=plan.low,
                highest=highest,
            )
        raise InvalidInput(
            "the port must be a whole number from {LOWEST_PORT} to {highest}",
            LOWEST_PORT=LOWEST_PORT,
            highest=highest,
        )
    mine = occupied_ports(profile, name, folder, {"port": port})
    other = overlapping_server(mine, taken)
    if other is not None:
        raise InvalidInput(
            "ports {first}-{last} overlap those of server `{other}`; choose another "
            "port, or leave it out to get a free one",
            first=min(mine),
            last=max(mine),
            other=other,
        )
    busy = busy_on_host(profile, name, folder, {"port": port}) if plan.probe else ""
    if busy:
        raise InvalidInput("{busy} is already in use on this host; choose another port", busy=busy)


def free_block(
    profile: GameProfile,
    name: str,
    folder: Path,
    taken: Mapping[str, set[int]],
    plan: PortPlan = PortPlan(),
) -> int:
    """The first block from the game's default port (from the start of the host's range
    when that default is outside it) that no server and no program uses."""
    stride = max(1, profile.port_stride)
    port = profile.default_port
    if not plan.low <= port <= plan.high - stride + 1:
        port = plan.low
    while port + stride - 1 <= plan.high:
        if port >= LOWEST_PORT:
            settings = {"port": port}
            mine = occupied_ports(profile, name, folder, settings)
            if overlapping_server(mine, taken) is None and not (
                plan.probe and busy_on_host(profile, name, folder, settings)
            ):
                return port
        port += stride
    raise InvalidInput("no free block of ports is left; give a port explicitly")
