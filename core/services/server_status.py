"""Status and list views of servers, read apart from the commands that change them."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Mapping
from typing import Any

from core.errors import LanguardError
from core.games.base import GameProfile
from core.services.fleet import Fleet
from core.services.host import host_addresses, primary_address
from core.services.port_plan import base_port
from core.services.server_views import ServerStatus, ServerSummary
from core.services.settings_schema import schema_for
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor

__all__ = ["ServerStatusReader"]

_log = logging.getLogger(__name__)

PLAYERS_TIMEOUT = 3.0


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _headless(server: ManagedServer) -> tuple[int, int] | None:
    running, wanted = server.companions.counts()
    return (running, wanted) if wanted else None


def _mission(settings: Mapping[str, Any]) -> str | None:
    """The first entry of the mission rotation, if the server has one."""
    rotation = settings.get("mission_rotation")
    if not isinstance(rotation, list) or not rotation:
        return None
    first = rotation[0]
    if isinstance(first, str):
        return first
    if isinstance(first, dict):
        for field in ("template", "name", "mission"):
            if isinstance(first.get(field), str):
                return str(first[field])
    return None


class ServerStatusReader:
    """What `/server status` and `/server list` show; nothing here changes a server."""

    def __init__(
        self, supervisor: Supervisor, public_host: str | None = None, fleet: Fleet | None = None
    ) -> None:
        self._sup = supervisor
        self._public_host = public_host
        self._fleet = fleet

    def _host(self) -> str:
        if self._public_host is None:
            addresses = host_addresses()
            self._public_host = primary_address() or (
                addresses[0] if addresses else socket.gethostname()
            )
        return self._public_host

    def _where(self, server: ManagedServer) -> tuple[str, bool]:
        """The server's host and whether it is away."""
        if self._fleet is None:
            return "local", False
        return self._fleet.host_of(server), self._fleet.shown_state(server) is not None

    def _address(
        self, profile: GameProfile, settings: Mapping[str, Any], server: ManagedServer
    ) -> str:
        spec = None if self._fleet is None else self._fleet.spec_of(server)
        declared = None if spec is None else spec.address
        host = declared or self._host()
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass  # a host name
        return f"{host}:{base_port(profile, settings)}"

    async def _players(self, server: ManagedServer) -> tuple[int | None, tuple[str, ...]]:
        link = server.link
        if link is None or server.state is not ServerState.RUNNING:
            return None, ()
        try:
            async with asyncio.timeout(PLAYERS_TIMEOUT):
                players = await link.players()
        except (LanguardError, TimeoutError, OSError) as exc:
            _log.debug("players of %s unknown: %s", server.name, exc)
            return None, ()
        return len(players), tuple(player.name for player in players)

    async def status(self, server: ManagedServer) -> ServerStatus:
        schema = schema_for(server.profile)
        settings = await self._sup.settings_repo.get_all(server.id)
        host, away = self._where(server)
        # a host away answers nothing: do not wait on it
        sample = None if away else await self._sup.sample(server)
        online, names = (None, ()) if away else await self._players(server)
        most = settings.get("max_players")
        if most is None and "max_players" in schema:
            most = schema.default("max_players")
        handle = server.handle
        return ServerStatus(
            name=server.name,
            game=server.game,
            state=server.state,
            state_reason=server.state_reason,
            uptime=server.uptime(),
            pid=None if handle is None else handle.pid,
            players_online=online,
            players_max=_as_int(most),
            player_names=names,
            mission=_mission(settings),
            cpu_percent=None if sample is None else sample.cpu_percent,
            rss_bytes=None if sample is None else sample.rss_bytes,
            address=self._address(server.profile, settings, server),
            paused=server.paused,
            started_at=None if handle is None else handle.started_at,
            headless=_headless(server),
            host=host,
            host_unreachable=away,
        )

    async def summaries(self) -> list[ServerSummary]:
        """Every server, cheaply (no game is asked anything)."""
        summaries: list[ServerSummary] = []
        for server in self._sup.all():
            settings = await self._sup.settings_repo.get_all(server.id)
            host, away = self._where(server)
            summaries.append(
                ServerSummary(
                    name=server.name,
                    game=server.game,
                    state=server.state,
                    state_reason=server.state_reason,
                    uptime=server.uptime(),
                    address=self._address(server.profile, settings, server),
                    paused=server.paused,
                    host=host,
                    host_unreachable=away,
                )
            )
        return summaries
