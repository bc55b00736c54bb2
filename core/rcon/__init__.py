"""RCon clients: BattlEye (UDP, Arma 3/DayZ) and Source RCON (TCP, Minecraft/Source games).

Each protocol is a sans-IO core (`battleye.py`, `source.py`) with a thin asyncio transport
(`battleye_client.py`, `source_client.py`); `battleye_server.py` is the server side of the
BattlEye protocol, used by the test servers.
"""

from __future__ import annotations

from core.rcon.battleye_client import BattlEyeClient
from core.rcon.errors import (
    RconClosed,
    RconCommandError,
    RconConnectionLost,
    RconError,
    RconLoginError,
    RconReplyTooLarge,
    RconTimeout,
)
from core.rcon.source_client import SourceRconClient

__all__ = [
    "BattlEyeClient",
    "RconClosed",
    "RconCommandError",
    "RconConnectionLost",
    "RconError",
    "RconLoginError",
    "RconReplyTooLarge",
    "RconTimeout",
    "SourceRconClient",
]
