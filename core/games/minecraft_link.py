"""The live command channel to one Minecraft server: Source RCON, or its stdin console.

Commands go over RCON when it is on and has a password; otherwise they are written to the
console FIFO and the reply is read back from the console log (the game prints a console
command's answer there and nowhere else). Either way the link also reads the console log to
publish what happens in game: players joining and leaving, kicks, bans, chat.

The log lines themselves are read by `core.games.minecraft_logs`, which says which lines
are believed; the console channel is `core.games.minecraft_console`, and the ban commands'
words are shaped in `core.games.minecraft_ban_commands`.

Two choices a caller cannot see:

* `banlist` is read over the console when there is one, even with RCON on: vanilla RCON
  drops the newlines between the lines of a reply (MC-7569), so `A was banned by X: griefB
  was banned by ...` cannot be split reliably; over RCON alone it is split best effort.
* Minecraft commands address players by name only, so a UUID ban is applied while running
  only when the UUID's name is known (seen joining, or in the game's `usercache.json` or ban
  file); otherwise it waits for the next start, when the profile writes the ban file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from core.backoff import Backoff
from core.errors import InvalidInput, LanguardError, NotFound, NotRunning, NotSupported
from core.events import EventBus, LogLines, RconStatus
from core.games.base import BanKind, GameBan, OnlinePlayer, RuntimeControl
from core.games.minecraft_ban_commands import (
    BAN_IP_OK,
    BAN_OK,
    ban_reason,
    ipv4,
    ipv4_or_none,
    name_in_files,
)
from core.games.minecraft_bans import found_in_ban_files
from core.games.minecraft_console import ConsoleUnavailable, MinecraftConsole, one_line
from core.games.minecraft_logs import (
    LogEventParser,
    banlist_reply_complete,
    is_reply,
    list_reply_complete,
    parse_banlist,
    parse_list,
    parse_message,
)
from core.games.minecraft_settings import clean_text, valid_player_name
from core.rcon.errors import RconError, RconLoginError
from core.rcon.source_client import SourceRconClient

__all__ = ["CONSOLE_SOURCE", "MinecraftLink"]

_log = logging.getLogger(__name__)

CONSOLE_SOURCE = "console"
"""The log source (the game's stdout) the link reads events and console replies from."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")


class _Refused(LanguardError):
    """The game answered, and the answer was no."""


class MinecraftLink:
    """A GameLink over RCON (when given a client) or the console; see the module docstring."""

    def __init__(
        self,
        *,
        server_id: int,
        server: str,
        folder: Path,
        bus: EventBus,
        control: RuntimeControl,
        rcon: SourceRconClient | None = None,
        timeout: float = 10.0,
        reply_wait: float = 2.0,
        quiet: float = 0.3,
    ) -> None:
        self.server_id = server_id
        self.server = server
        self._folder = folder
        self._bus = bus
        self._control = control
        self._rcon = rcon
        self.timeout = timeout
        self.reply_wait = reply_wait
        self.quiet = quiet
        self.parser = LogEventParser(server_id, server)
        self._sub = bus.subscribe(LogLines)
        self._stdin = MinecraftConsole(server, folder, control)
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        if rcon is not None:
            rcon.on_status = self._rcon_status

    def __repr__(self) -> str:
        via = "rcon" if self._rcon is not None else "console"
        return f"<MinecraftLink {self.server} via {via}{' closed' if self._closed else ''}>"

    @property
    def uses_rcon(self) -> bool:
        return self._rcon is not None

    @property
    def connected(self) -> bool:
        if self._closed:
            return False
        if self._rcon is not None:
            return self._rcon.connected
        return self._control.is_alive()

    def start(self) -> None:
        """Start reading the console log (and connecting RCON) in the background."""
        self._tasks.append(asyncio.create_task(self._pump(), name=f"{self.server}:mc-log"))
        if self._rcon is not None:
            task = asyncio.create_task(self._connect_rcon(), name=f"{self.server}:mc-rcon")
            self._tasks.append(task)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._rcon is not None:
            self._rcon.on_status = None  # a planned close is not an "RCon lost" alert
            await self._rcon.close()

    # -- background ------------------------------------------------------------------------

    def _rcon_status(self, connected: bool, reason: str) -> None:
        self._bus.publish(
            RconStatus(
                server_id=self.server_id, server=self.server, connected=connected, reason=reason
            )
        )

    async def _connect_rcon(self) -> None:
        """Connect as soon as the game listens (it opens RCON just after `Done`)."""
        assert self._rcon is not None
        backoff = Backoff(base=0.2, cap=5.0)
        while not self._closed:
            try:
                await self._rcon.connect()
                return
            except RconLoginError as exc:
                _log.error("%s: %s", self.server, exc)
                self._rcon_status(False, "the server refused the RCON password")
                return
            except RconError as exc:
                _log.debug("%s: RCON not up yet: %s", self.server, exc)
            await asyncio.sleep(backoff.next())

    async def _pump(self) -> None:
        async for event in self._sub:
            if not isinstance(event, LogLines) or event.server_id != self.server_id:
                continue
            if event.source != CONSOLE_SOURCE:
                continue
            for line in event.lines:
                message = parse_message(line.text)
                if message is None:
                    continue
                try:
                    for found in self.parser.feed_message(message):
                        self._bus.publish(found)
                except Exception:  # a parser bug must not stop the replies
                    _log.exception("%s: cannot parse a log line", self.server)
                waiter = self._stdin.waiter
                if waiter is not None and line.end > waiter.after and is_reply(message):
                    waiter.offer(message.text)

    # -- transports ------------------------------------------------------------------------

    async def _console(self, text: str, complete: Callable[[list[str]], bool] | None) -> str:
        return await self._stdin.run(
            text, complete, timeout=self.timeout, reply_wait=self.reply_wait, quiet=self.quiet
        )

    async def _run(
        self,
        text: str,
        complete: Callable[[list[str]], bool] | None = one_line,
        *,
        console_first: bool = False,
    ) -> str:
        if self._closed:
            raise NotRunning("{server} is not running", server=self.server)
        if self._rcon is None:
            return await self._console(text, complete)
        if console_first:
            with contextlib.suppress(ConsoleUnavailable):
                return await self._console(text, complete)
        try:
            return await self._rcon.command(text, timeout=self.timeout)
        except RconError as exc:
            raise LanguardError("{server}: RCON {exc}", server=self.server, exc=exc) from None

    async def _expect(
        self, command: str, ok: tuple[str, ...], missing: tuple[str, ...] = ()
    ) -> str:
        reply = await self._run(command)
        if reply.startswith(ok):
            return reply
        verb = command.split(" ", 1)[0]
        shown = clean_text(reply, 200)
        if missing and reply.startswith(missing):
            raise NotFound(
                "{server}: `{verb}` failed: {shown}", server=self.server, verb=verb, shown=shown
            )
        if not shown:
            raise _Refused("{server} refused `{verb}`: no answer", server=self.server, verb=verb)
        raise _Refused(
            "{server} refused `{verb}`: {shown}", server=self.server, verb=verb, shown=shown
        )

    # -- GameLink --------------------------------------------------------------------------

    async def command(self, text: str) -> str:
        line = text.strip().removeprefix("/")
        if not line or len(line) > 1000 or _CONTROL.search(line):
            raise InvalidInput("a game command is one line of text without control characters")
        return await self._run(line, None)

    async def probe(self) -> None:
        await self._run("list", list_reply_complete)

    async def players(self) -> list[OnlinePlayer]:
        reply = await self._run("list", list_reply_complete)
        names = parse_list(reply)
        if names is None:
            raise LanguardError(
                "{server} answered `list` with: {reply}",
                server=self.server,
                reply=clean_text(reply, 100),
            )
        return [
            OnlinePlayer(
                key=name, name=name, guid=self.parser.uuid_of(name), ip=self.parser.ip_of(name)
            )
            for name in names
        ]

    async def kick(self, player: OnlinePlayer, reason: str) -> None:
        name = valid_player_name(player.key)
        command = f"kick {name} {clean_text(reason, 200)}".rstrip()
        await self._expect(command, ("Kicked ",), ("No player was found",))

    async def ban(self, player: OnlinePlayer, ban: GameBan) -> None:
        if ban.kind is BanKind.IP:
            await self._ban_ip(ban.value or player.ip or "", ban)
        elif ban.kind in (BanKind.NAME, BanKind.UUID):
            await self._ban_name(valid_player_name(player.key), ban)
        else:
            raise InvalidInput("Minecraft cannot ban by {value}", value=ban.kind.value)

    async def add_ban(self, ban: GameBan) -> None:
        if ban.kind is BanKind.IP:
            await self._ban_ip(ban.value, ban)
        elif ban.kind is BanKind.NAME:
            await self._ban_name(valid_player_name(ban.value), ban)
        elif ban.kind is BanKind.UUID:
            name = self.name_for_uuid(ban.value)
            if name is None:
                raise NotSupported(
                    "{server} can ban UUID {value} only once that player's name is known; it "
                    "is applied at the next start",
                    server=self.server,
                    value=ban.value,
                )
            await self._ban_name(name, ban)
        else:
            raise InvalidInput("Minecraft cannot ban by {value}", value=ban.kind.value)

    async def remove_ban(self, ban: GameBan) -> None:
        if ban.kind is BanKind.IP:
            address = ipv4(ban.value)
            await self._expect(f"pardon-ip {address}", ("Unbanned IP ", "Nothing changed"))
            return
        if ban.kind is BanKind.UUID:
            name = self.name_for_uuid(ban.value)
            if name is None:
                _log.info(
                    "%s: UUID %s has no known name; nothing to pardon", self.server, ban.value
                )
                return
        elif ban.kind is BanKind.NAME:
            name = valid_player_name(ban.value)
        else:
            raise InvalidInput("Minecraft cannot ban by {value}", value=ban.kind.value)
        await self._expect(f"pardon {name}", ("Unbanned ", "Nothing changed"))

    async def list_bans(self) -> list[GameBan]:
        """What the game holds: its ban files, which it rewrites on every change."""
        return await asyncio.to_thread(found_in_ban_files, self._folder)  # bounded reads

    async def sync_bans(self, bans: Sequence[GameBan], lifted: Sequence[GameBan] = ()) -> None:
        """Ban what the game lacks of `bans`; pardon what it holds of `lifted` (and `bans`
        lacks); every other ban of the game is left alone.

        An entry the game refuses (an unknown name in online mode, an IPv6 address) is
        logged and skipped, so one bad entry cannot block the rest.
        """
        now = time.time()
        names: dict[str, tuple[str, GameBan]] = {}
        ips: dict[str, GameBan] = {}
        for ban in bans:
            if ban.expires_at is not None and ban.expires_at <= now:
                continue
            if ban.kind is BanKind.IP and ipv4_or_none(ban.value):
                ips[ban.value] = ban
                continue
            name = self._name_of(ban)
            if name is not None:
                names[name.lower()] = (name, ban)
            else:
                _log.warning("%s: cannot apply %s ban %s now", self.server, ban.kind, ban.value)
        gone_names = {n.lower() for b in lifted if (n := self._name_of(b)) is not None}
        gone_names -= set(names)
        gone_ips = {a for b in lifted if b.kind is BanKind.IP and (a := ipv4_or_none(b.value))}
        gone_ips -= set(ips)
        players = parse_banlist(
            await self._run("banlist players", banlist_reply_complete, console_first=True)
        )
        addresses = parse_banlist(
            await self._run("banlist ips", banlist_reply_complete, console_first=True)
        )
        if players is None or addresses is None:
            raise LanguardError("{server} did not answer `banlist` as expected", server=self.server)
        held = {target.lower() for target in players}
        for target in players:
            if target.lower() in gone_names and re.fullmatch(r"[A-Za-z0-9_]{1,16}", target):
                await self._lenient(f"pardon {target}", ("Unbanned ", "Nothing changed"))
        for address in gone_ips & set(addresses):
            await self._lenient(f"pardon-ip {address}", ("Unbanned IP ", "Nothing changed"))
        for key, (name, ban) in names.items():
            if key not in held:
                await self._lenient(f"ban {name} {ban_reason(ban)}".rstrip(), BAN_OK)
        for address, ban in ips.items():
            if address not in addresses:
                command = f"ban-ip {address} {ban_reason(ban)}".rstrip()
                await self._lenient(command, BAN_IP_OK)

    def _name_of(self, ban: GameBan) -> str | None:
        """The name Minecraft's commands take for a player ban (None: IP, or not known)."""
        name = ban.value if ban.kind is BanKind.NAME else None
        if ban.kind is BanKind.UUID:
            name = self.name_for_uuid(ban.value)
        return name if name is not None and re.fullmatch(r"[A-Za-z0-9_]{1,16}", name) else None

    async def say(self, message: str) -> None:
        text = clean_text(message, 256)
        if not text:
            raise InvalidInput("the message is empty")
        await self._run(f"say {text}")

    async def load_mission(self, template: str, difficulty: str | None) -> None:
        raise NotSupported("Minecraft servers have no missions")

    # -- helpers ---------------------------------------------------------------------------

    async def _ban_name(self, name: str, ban: GameBan) -> None:
        command = f"ban {name} {ban_reason(ban)}".rstrip()
        await self._expect(command, BAN_OK, ("That player does not exist",))

    async def _ban_ip(self, value: str, ban: GameBan) -> None:
        command = f"ban-ip {ipv4(value)} {ban_reason(ban)}".rstrip()
        await self._expect(command, BAN_IP_OK, ("Invalid IP address",))

    async def _lenient(self, command: str, ok: tuple[str, ...]) -> None:
        try:
            await self._expect(command, ok, ("That player does not exist",))
        except (NotFound, InvalidInput, _Refused) as exc:
            _log.warning("%s: ban sync skipped one entry: %s", self.server, exc)

    def name_for_uuid(self, uuid: str) -> str | None:
        """The name of a UUID: seen joining, else from the game's usercache or ban file."""
        found = self.parser.name_of(uuid)
        if found is not None:
            return found
        return name_in_files(self._folder, uuid)
