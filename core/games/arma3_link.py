"""The command channel to a running Arma 3 server: BattlEye RCon, kept alive and reconnected.

The link turns service calls (kick, ban, say, `#mission` ...) into BE console commands and
the console lines BattlEye pushes (joins, kicks, chat) into events on the bus. Text that goes
into a command (reasons, messages) is flattened to one line and capped, so nothing a user
types can add a second command. RCon failures come out as `LanguardError`s a user can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import InvalidInput, NotRunning, NotSupported
from core.events import (
    Chat,
    EventBus,
    PlayerBanned,
    PlayerJoined,
    PlayerKicked,
    PlayerLeft,
    RconStatus,
)
from core.games.arma3_banlist import (
    REASON_LIMIT,
    add_ban_command,
    ban_minutes,
    ban_target_of,
    list_bans,
    remove_ban,
    sync_bans,
)
from core.games.arma3_config import sanitize_line
from core.games.arma3_settings import canonical_difficulty, validate_template
from core.games.base import GameBan, OnlinePlayer
from core.rcon.battleye_client import BattlEyeClient
from core.rcon.battleye_parsers import (
    BattlEyeMessage,
    ChatMessage,
    GuidVerified,
    KickKind,
    PlayerConnected,
    PlayerDisconnected,
    PlayerGuid,
    RconSay,
    parse_message,
    parse_players,
)
from core.rcon.battleye_parsers import PlayerKicked as BeKicked
from core.rcon.errors import RconCommandError, RconError, RconLoginError, RconTimeout

__all__ = ["REASON_LIMIT", "SAY_LIMIT", "Arma3Link", "RconOptions", "ban_minutes"]

_log = logging.getLogger(__name__)

SAY_LIMIT = 400
_COMMAND_LIMIT = 1000
_SLOT = re.compile(r"[0-9]{1,4}")


@dataclass(frozen=True, slots=True)
class RconOptions:
    """How the profile talks to BattlEye: address, per-attempt timeout, retries, keepalive.

    `guid_wait`: a join is announced when BattlEye reports the GUID; a player whose GUID
    never comes is announced without one after this many seconds.
    """

    host: str = "127.0.0.1"
    timeout: float = 1.0
    retries: int = 2
    keepalive_interval: float = 30.0
    guid_wait: float = 3.0


@dataclass(slots=True)
class _Seen:
    """A player BattlEye told us about; announced once its GUID is known (or after a wait)."""

    name: str
    ip: str | None
    guid: str | None = None
    announced: bool = False
    timer: asyncio.TimerHandle | None = None


class Arma3Link:
    """A `GameLink` over BattlEye RCon; create with `await Arma3Link.connect(...)`."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        password: str,
        bus: EventBus,
        server_id: int,
        server: str,
        options: RconOptions | None = None,
    ) -> None:
        self._options = options or RconOptions(host=host)
        self._bus = bus
        self.server_id = server_id
        self.server = server
        self._client = BattlEyeClient(
            host,
            port,
            password,
            timeout=self._options.timeout,
            retries=self._options.retries,
            keepalive_interval=self._options.keepalive_interval,
            reconnect=True,
            on_status=self._on_status,
        )
        self._slots: dict[int, _Seen] = {}
        self._pump: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Arma3Link {self.server} connected={self.connected}>"

    @classmethod
    async def connect(
        cls,
        *,
        host: str,
        port: int,
        password: str,
        bus: EventBus,
        server_id: int,
        server: str,
        options: RconOptions | None = None,
    ) -> Arma3Link:
        """Log in and start relaying console messages; raises NotRunning when RCon is down."""
        link = cls(
            host=host,
            port=port,
            password=password,
            bus=bus,
            server_id=server_id,
            server=server,
            options=options,
        )
        try:
            await link._client.connect()
        except RconLoginError:
            raise NotRunning("{server} refused the RCon password", server=server) from None
        except (RconError, OSError) as exc:
            raise NotRunning(
                "{server} does not answer over RCon yet ({exc})", server=server, exc=exc
            ) from None
        try:
            await link._learn_players()
        except BaseException:  # cancelled (a stop of a frozen game): never leak the socket
            await asyncio.shield(link._client.close())
            raise
        link._pump = asyncio.create_task(link._relay(), name=f"{server}:rcon-messages")
        link._publish_status(True, "connected")
        return link

    @property
    def connected(self) -> bool:
        return self._client.connected

    async def _learn_players(self) -> None:
        """Who was on before the link opened (no events): names for parsing chat, GUIDs."""
        try:
            players = parse_players(await self._client.command("players"))
        except RconError as exc:
            _log.debug("%s: could not list players at connect: %s", self.server, exc)
            return
        for p in players:
            guid = None if p.guid == "-" else p.guid.lower()
            self._slots[p.id] = _Seen(p.name, p.ip, guid, announced=True)

    # --- commands --------------------------------------------------------------------------

    async def _run(self, text: str) -> str:
        try:
            return await self._client.command(text)
        except RconCommandError:
            raise NotSupported(
                "{server} refused that command (RestrictRCon is on in BattlEye)", server=self.server
            ) from None
        except RconTimeout:
            raise NotRunning(
                "{server} did not answer over RCon in time; it may be busy or hung",
                server=self.server,
            ) from None
        except RconError:
            raise NotRunning(
                "the RCon connection to {server} is closed", server=self.server
            ) from None

    async def command(self, text: str) -> str:
        """A raw console command (`/rcon`), refused when it holds a line break."""
        command = text.strip()
        if not command or sanitize_line(command, _COMMAND_LIMIT) != command:
            raise InvalidInput(
                "an RCon command is one line of at most {COMMAND_LIMIT} characters",
                COMMAND_LIMIT=_COMMAND_LIMIT,
            )
        return await self._run(command)

    async def probe(self) -> None:
        await self._run("players")

    async def players(self) -> list[OnlinePlayer]:
        """Who is on the server now, keyed by BattlEye slot number."""
        return [
            OnlinePlayer(
                key=str(p.id),
                name=p.name,
                guid=None if p.guid == "-" else p.guid,
                ip=p.ip,
                ping=p.ping,
                lobby=p.lobby,
                verified=p.verified,
            )
            for p in parse_players(await self._run("players"))
        ]

    async def kick(self, player: OnlinePlayer, reason: str) -> None:
        await self._run(_join("kick", _slot(player), sanitize_line(reason, REASON_LIMIT)))

    async def ban(self, player: OnlinePlayer, ban: GameBan) -> None:
        minutes = ban_minutes(ban.expires_at)
        reason = sanitize_line(ban.reason, REASON_LIMIT)
        await self._run(_join("ban", _slot(player), str(minutes), reason))

    async def add_ban(self, ban: GameBan) -> None:
        await self._run(add_ban_command(ban_target_of(ban), ban))

    async def remove_ban(self, ban: GameBan) -> None:
        await remove_ban(self._run, ban, self.server)

    async def list_bans(self) -> list[GameBan]:
        return await list_bans(self._run)

    async def sync_bans(self, bans: Sequence[GameBan], lifted: Sequence[GameBan] = ()) -> None:
        """Hold `bans`, drop `lifted`, leave every other entry (see arma3_banlist)."""
        await sync_bans(self._run, bans, lifted)

    async def say(self, message: str) -> None:
        text = sanitize_line(message, SAY_LIMIT)
        if not text:
            raise InvalidInput("the message is empty")
        await self._run(f"say -1 {text}")

    async def load_mission(self, template: str, difficulty: str | None) -> None:
        # both raise InvalidValue, an InvalidInput a member can read (and a front end translate)
        name = validate_template(template)
        level = canonical_difficulty(difficulty) if difficulty else None
        await self._run(_join("#mission", name, level or ""))

    async def close(self) -> None:
        for seen in self._slots.values():
            if seen.timer is not None:
                seen.timer.cancel()
        self._slots.clear()
        await self._client.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None

    # --- events ----------------------------------------------------------------------------

    def _on_status(self, up: bool, reason: str) -> None:
        self._publish_status(up, reason)

    def _publish_status(self, up: bool, reason: str) -> None:
        self._bus.publish(
            RconStatus(server_id=self.server_id, server=self.server, connected=up, reason=reason)
        )

    async def _relay(self) -> None:
        async for message in self._client.messages():
            names = [seen.name for seen in self._slots.values()]
            try:
                self._handle(parse_message(message.text, names=names))
            except Exception:  # one odd line must not stop the relay
                _log.exception("%s: handling RCon message %r failed", self.server, message.text)

    def _handle(self, msg: BattlEyeMessage) -> None:
        sid, srv = self.server_id, self.server
        if isinstance(msg, PlayerConnected):
            seen = _Seen(msg.name, msg.ip)
            old = self._slots.pop(msg.player_id, None)
            if old is not None and old.timer is not None:
                old.timer.cancel()
            self._slots[msg.player_id] = seen
            loop = asyncio.get_running_loop()
            seen.timer = loop.call_later(self._options.guid_wait, self._announce, msg.player_id)
        elif isinstance(msg, PlayerGuid | GuidVerified):
            seen = self._slots.setdefault(msg.player_id, _Seen(msg.name, None))
            seen.guid = msg.guid.lower()
            self._announce(msg.player_id)
        elif isinstance(msg, PlayerDisconnected):
            self._announce(msg.player_id)
            gone = self._slots.pop(msg.player_id, None)
            guid = gone.guid if gone else None
            self._bus.publish(
                PlayerLeft(
                    server_id=sid,
                    server=srv,
                    name=msg.name,
                    player_key=str(msg.player_id),
                    guid=guid,
                )
            )
        elif isinstance(msg, BeKicked):
            self._announce(msg.player_id)
            known = self._slots.get(msg.player_id)
            guid = msg.guid.lower() if len(msg.guid) == 32 else known.guid if known else None
            key = str(msg.player_id)
            if msg.kind is KickKind.ADMIN_BAN or msg.reason == "Banned":
                reason = "" if msg.kind is not KickKind.ADMIN_BAN else msg.reason
                self._bus.publish(
                    PlayerBanned(
                        server_id=sid,
                        server=srv,
                        name=msg.name,
                        reason=reason,
                        player_key=key,
                        guid=guid,
                    )
                )
            else:
                self._bus.publish(
                    PlayerKicked(
                        server_id=sid,
                        server=srv,
                        name=msg.name,
                        reason=msg.reason,
                        player_key=key,
                        guid=guid,
                    )
                )
        elif isinstance(msg, ChatMessage):
            self._bus.publish(
                Chat(server_id=sid, server=srv, channel=msg.channel, author=msg.name, text=msg.text)
            )
        elif isinstance(msg, RconSay) and msg.to is None:
            self._bus.publish(
                Chat(
                    server_id=sid, server=srv, channel="Global", author="RCon admin", text=msg.text
                )
            )

    def _announce(self, player_id: int) -> None:
        seen = self._slots.get(player_id)
        if seen is None or seen.announced:
            return
        seen.announced = True
        if seen.timer is not None:
            seen.timer.cancel()
            seen.timer = None
        self._bus.publish(
            PlayerJoined(
                server_id=self.server_id,
                server=self.server,
                name=seen.name,
                player_key=str(player_id),
                guid=seen.guid,
                ip=seen.ip,
            )
        )


def _join(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def _slot(player: OnlinePlayer) -> str:
    if not _SLOT.fullmatch(player.key):
        raise InvalidInput(
            "{name!r} has no BattlEye slot number; refresh the player list", name=player.name
        )
    return player.key
