"""The live command channel to one Minecraft server: Source RCON, or its stdin console.

Commands go over RCON when it is on and has a password; otherwise they are written to the
console FIFO and the reply is read back from the console log (the game prints a console
command's answer there and nowhere else). Either way the link also reads the console log to
publish what happens in game: players joining and leaving, kicks, bans, chat.

The log lines themselves are read by `core.games.minecraft_logs`, which says which lines
are believed.

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
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from core.backoff import Backoff
from core.errors import InvalidInput, LanguardError, NotFound, NotRunning, NotSupported
from core.events import EventBus, LogLines, RconStatus
from core.games.base import BanKind, GameBan, OnlinePlayer, RuntimeControl
from core.games.minecraft_bans import found_in_ban_files
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
from core.logs.rotation_state import logical_size
from core.rcon.errors import RconError, RconLoginError
from core.rcon.source_client import SourceRconClient

__all__ = [
    "CONSOLE_SOURCE",
    "MinecraftLink",
]

_log = logging.getLogger(__name__)

CONSOLE_SOURCE = "console"
"""The log source (the game's stdout) the link reads events and console replies from."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
_NAME_FILES = ("usercache.json", "banned-players.json")


def _one_line(lines: list[str]) -> bool:
    return bool(lines)


class _Waiter:
    """The reply lines of one console command, collected as the console log grows."""

    def __init__(self, after: int, complete: Callable[[list[str]], bool] | None) -> None:
        self.after = after
        self.complete = complete
        self.lines: list[str] = []
        self.first = asyncio.Event()
        self.done = asyncio.Event()

    def offer(self, text: str) -> None:
        if self.done.is_set():
            return
        self.lines.append(text)
        self.first.set()
        if self.complete is not None and self.complete(self.lines):
            self.done.set()


class _ConsoleUnavailable(NotRunning):
    pass


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
        self._waiter: _Waiter | None = None
        self._console_lock = asyncio.Lock()
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
                waiter = self._waiter
                if waiter is not None and line.end > waiter.after and is_reply(message):
                    waiter.offer(message.text)

    # -- transports ------------------------------------------------------------------------

    def _console_size(self) -> int:
        """Bytes ever written to console.log: line ends are logical offsets (rotation)."""
        return logical_size(self._folder / "console.log")

    async def _console(self, text: str, complete: Callable[[list[str]], bool] | None) -> str:
        async with self._console_lock:
            waiter = _Waiter(self._console_size(), complete)
            self._waiter = waiter
            try:
                try:
                    self._control.write_console(text)
                except (OSError, ValueError) as exc:
                    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                    raise _ConsoleUnavailable(
                        "{server}: the console cannot be written ({reason})",
                        server=self.server,
                        reason=reason,
                    ) from None
                if complete is None:  # a raw command: whatever comes, briefly
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(self.timeout, self.reply_wait)):
                            await waiter.first.wait()
                    if waiter.first.is_set():
                        await asyncio.sleep(self.quiet)
                    return "\n".join(waiter.lines)
                try:
                    async with asyncio.timeout(self.timeout):
                        await waiter.done.wait()
                except TimeoutError:
                    head = text.split(" ", 1)[0][:32]
                    raise LanguardError(
                        "{server} did not answer `{head}` on the console within {timeout:g} s",
                        server=self.server,
                        head=head,
                        timeout=self.timeout,
                    ) from None
                return "\n".join(waiter.lines)
            finally:
                self._waiter = None

    async def _run(
        self,
        text: str,
        complete: Callable[[list[str]], bool] | None = _one_line,
        *,
        console_first: bool = False,
    ) -> str:
        if self._closed:
            raise NotRunning("{server} is not running", server=self.server)
        if self._rcon is None:
            return await self._console(text, complete)
        if console_first:
            with contextlib.suppress(_ConsoleUnavailable):
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
            address = _ipv4(ban.value)
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
            if ban.kind is BanKind.IP and _ipv4_or_none(ban.value):
                ips[ban.value] = ban
                continue
            name = self._name_of(ban)
            if name is not None:
                names[name.lower()] = (name, ban)
            else:
                _log.warning("%s: cannot apply %s ban %s now", self.server, ban.kind, ban.value)
        gone_names = {n.lower() for b in lifted if (n := self._name_of(b)) is not None}
        gone_names -= set(names)
        gone_ips = {a for b in lifted if b.kind is BanKind.IP and (a := _ipv4_or_none(b.value))}
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
                await self._lenient(f"ban {name} {_ban_reason(ban)}".rstrip(), _BAN_OK)
        for address, ban in ips.items():
            if address not in addresses:
                command = f"ban-ip {address} {_ban_reason(ban)}".rstrip()
                await self._lenient(command, _BAN_IP_OK)

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
        command = f"ban {name} {_ban_reason(ban)}".rstrip()
        await self._expect(command, _BAN_OK, ("That player does not exist",))

    async def _ban_ip(self, value: str, ban: GameBan) -> None:
        command = f"ban-ip {_ipv4(value)} {_ban_reason(ban)}".rstrip()
        await self._expect(command, _BAN_IP_OK, ("Invalid IP address",))

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
        for file_name in _NAME_FILES:
            try:
                entries = json.loads((self._folder / file_name).read_bytes()[: 4 * 1024 * 1024])
            except (OSError, ValueError):
                continue
            for entry in entries if isinstance(entries, list) else []:
                if (
                    not isinstance(entry, dict)
                    or str(entry.get("uuid", "")).lower() != uuid.lower()
                ):
                    continue
                name = str(entry.get("name", ""))
                if re.fullmatch(r"[A-Za-z0-9_]{1,16}", name):
                    return name
        return None


_BAN_OK = ("Banned ", "Nothing changed")
_BAN_IP_OK = ("Banned IP ", "Nothing changed")


def _ban_reason(ban: GameBan) -> str:
    """The reason players see; Minecraft has no end date, so a temporary ban names it."""
    reason = clean_text(ban.reason, 150)
    if ban.expires_at is not None:
        until = datetime.fromtimestamp(ban.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        reason = f"{reason} (until {until})".strip()
    return reason


def _ipv4_or_none(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return str(address) if isinstance(address, ipaddress.IPv4Address) else None


def _ipv4(value: str) -> str:
    address = _ipv4_or_none(value)
    if address is None:
        raise InvalidInput(
            "Minecraft bans IPv4 addresses only, not {value!r}",
            value=clean_text(value, 45),
        )
    return address
