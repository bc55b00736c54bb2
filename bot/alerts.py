"""Alerts for a server's alerts channel: crashes, crash loops given up, hangs, failed starts,
RCon lost and restored, a data disk filling up, and a bound channel the bot can no longer
post to.

Quiet on purpose: planned stops and restarts never alert (the supervisor reports only
unexpected exits as crashes), a server in maintenance is muted, and one kind of alert for
one server fires at most once per `dedup_seconds`; the next one says how many were held
back. The give-up alert is the only message the bot sends with a mention, of one role.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import discord

from bot.embeds import clean_game_text, escape_code, format_bytes, format_uptime
from bot.outbox import Outbox
from bot.outbox_plan import FENCE, OutMessage
from bot.relay import clean_lines
from core.errors import NotFound
from core.events import (
    Event,
    RconStatus,
    ServerCrashed,
    ServerFailed,
    ServerHung,
    StorageTrouble,
)
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor

__all__ = ["AlertConfig", "AlertDesk", "AlertRoute", "crash_embed", "log_block"]

_log = logging.getLogger(__name__)

GIB = 1024**3
ORANGE = discord.Colour.orange()
RED = discord.Colour.red()
GREEN = discord.Colour.green()
GOLD = discord.Colour.gold()


@dataclass(frozen=True)
class AlertConfig:
    dedup_seconds: float = 300.0
    disk_interval: float = 300.0
    disk_min_free_ratio: float = 0.05
    disk_min_free_bytes: int = 2 * GIB


@dataclass(frozen=True, slots=True)
class AlertRoute:
    channel_id: int
    role_id: int | None = None


@dataclass(slots=True)
class _Seen:
    last: float
    held: int = 0


def log_block(lines: Sequence[str], limit: int = 3800) -> str:
    """The last lines that fit, in a code block nothing inside can close."""
    body: list[str] = []
    size = len(FENCE) * 2 + 2
    for line in reversed(clean_lines(list(lines))):
        line = escape_code(line)
        if size + len(line) + 1 > limit:
            break
        body.append(line)
        size += len(line) + 1
    if not body:
        return f"{FENCE}\n(no lines)\n{FENCE}"
    return f"{FENCE}\n" + "\n".join(reversed(body)) + f"\n{FENCE}"


def _exit_text(event: ServerCrashed) -> str:
    if event.signal is not None:
        try:
            name = signal.Signals(event.signal).name
        except ValueError:
            name = "unknown"
        return f"signal {event.signal} ({name})"
    if event.exit_code is not None:
        return f"exit code {event.exit_code}"
    return "exited while the bot was down"


def crash_embed(event: ServerCrashed, held: int = 0) -> discord.Embed:
    name = clean_game_text(event.server, 100)
    embed = discord.Embed(title=f"💥 {name} crashed", colour=ORANGE)
    embed.description = f"Last log lines:\n{log_block(event.last_lines)}"
    embed.add_field(name="Exit", value=_exit_text(event))
    embed.add_field(name="Uptime", value=format_uptime(event.uptime_s))
    if event.restart_in_s is not None:
        at = int(time.time() + event.restart_in_s)
        restart = (
            f"attempt {event.attempt} of {event.max_attempts}, "
            f"in {event.restart_in_s:g} s (<t:{at}:T>)"
        )
    else:
        restart = f"no automatic restart (crash {event.attempt} of {event.max_attempts})"
    embed.add_field(name="Restart", value=restart, inline=False)
    _held_footer(embed, held)
    return embed


def _held_footer(embed: discord.Embed, held: int) -> None:
    if held:
        plural = "s" if held != 1 else ""
        embed.set_footer(text=f"{held} more alert{plural} of this kind since the last one")


class AlertDesk:
    """Turns events into alert messages on the outbox of each server's alerts channel."""

    def __init__(
        self,
        supervisor: Supervisor,
        outbox_for: Callable[[int], Outbox],
        *,
        data_dir: Path,
        config: AlertConfig | None = None,
    ) -> None:
        self._sup = supervisor
        self._outbox_for = outbox_for
        self._data_dir = data_dir
        self.config = config or AlertConfig()
        self.routes: dict[int, AlertRoute] = {}
        self._seen: dict[tuple[int, str], _Seen] = {}
        self._last_crash: dict[int, ServerCrashed] = {}
        self._rcon_down: set[int] = set()
        self._storage_down: set[int] = set()
        self._storage_alerted = False
        self._channel_alerted: dict[int, list[int]] = {}
        """Unwritable channel -> the alerts channels told about it (told again when it heals)."""
        self.sent: list[tuple[int, str]] = []
        """(server id, kind) of every alert posted, for `/host` and tests."""

    # -- events --------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if isinstance(event, StorageTrouble):
            self._storage(event)
            return
        route = self.routes.get(event.server_id)
        if route is None or self._muted(event.server_id):
            return
        if isinstance(event, ServerCrashed):
            self._last_crash[event.server_id] = event
            if event.restart_in_s is None and event.attempt >= event.max_attempts:
                return  # the give-up alert that follows says it all
            self._fire(route, event.server_id, "crash", lambda held: crash_embed(event, held))
        elif isinstance(event, ServerFailed):
            if event.crashes > 0:
                self._give_up(route, event)
            else:
                self._fire(route, event.server_id, "failed", lambda held: self._failed(event, held))
        elif isinstance(event, ServerHung):
            self._fire(route, event.server_id, "hung", lambda held: self._hung(event, held))
        elif isinstance(event, RconStatus):
            self._rcon(route, event)

    def _muted(self, server_id: int) -> bool:
        try:
            return self._sup.get(server_id).paused
        except NotFound:
            return True

    def _gate(self, server_id: int, kind: str) -> int | None:
        """None to hold the alert back; else how many were held back since the last one."""
        now = time.monotonic()
        seen = self._seen.get((server_id, kind))
        if seen is not None and now - seen.last < self.config.dedup_seconds:
            seen.held += 1
            return None
        self._seen[(server_id, kind)] = _Seen(now)
        return 0 if seen is None else seen.held

    def _fire(
        self,
        route: AlertRoute,
        server_id: int,
        kind: str,
        build: Callable[[int], discord.Embed],
        *,
        mention: bool = False,
    ) -> bool:
        held = self._gate(server_id, kind)
        if held is None:
            return False
        role = route.role_id if mention else None
        content = f"<@&{role}>" if role else None
        future = self._outbox_for(route.channel_id).post(
            OutMessage(content=content, embed=build(held), mention_role=role)
        )
        future.add_done_callback(_log_failure)
        self.sent.append((server_id, kind))
        return True

    def _give_up(self, route: AlertRoute, event: ServerFailed) -> None:
        crash = self._last_crash.pop(event.server_id, None)

        def build(held: int) -> discord.Embed:
            name = clean_game_text(event.server, 100)
            embed = discord.Embed(title=f"🛑 {name}: crash loop, gave up", colour=RED)
            text = clean_game_text(event.reason, 500)
            if crash is not None:
                text += f"\nLast crash: {_exit_text(crash)}, up {format_uptime(crash.uptime_s)}"
                text += f"\n{log_block(crash.last_lines, 3000)}"
            embed.description = text
            embed.add_field(name="Crashes", value=str(event.crashes))
            embed.add_field(name="Next step", value="fix the cause, then `/server start`")
            _held_footer(embed, held)
            return embed

        self._fire(route, event.server_id, "gave-up", build, mention=True)

    @staticmethod
    def _failed(event: ServerFailed, held: int) -> discord.Embed:
        name = clean_game_text(event.server, 100)
        embed = discord.Embed(title=f"⚠️ {name} failed to start", colour=RED)
        embed.description = clean_game_text(event.reason, 1000)
        _held_footer(embed, held)
        return embed

    @staticmethod
    def _hung(event: ServerHung, held: int) -> discord.Embed:
        name = clean_game_text(event.server, 100)
        embed = discord.Embed(title=f"⏳ {name} hung: restarting it", colour=GOLD)
        embed.description = clean_game_text(event.reason, 1000)
        _held_footer(embed, held)
        return embed

    def _rcon(self, route: AlertRoute, event: RconStatus) -> None:
        name = clean_game_text(event.server, 100)
        reason = clean_game_text(event.reason, 500) if event.reason else ""
        if event.connected:
            if event.server_id in self._rcon_down:
                self._rcon_down.discard(event.server_id)
                embed = discord.Embed(title=f"🔌 {name}: RCon restored", colour=GREEN)
                self._outbox_for(route.channel_id).post(OutMessage(embed=embed)).add_done_callback(
                    _log_failure
                )
                self.sent.append((event.server_id, "rcon-restored"))
            return
        try:
            running = self._sup.get(event.server_id).state is ServerState.RUNNING
        except NotFound:
            return
        if not running:
            return  # a stop closes the link: expected

        def build(held: int) -> discord.Embed:
            embed = discord.Embed(title=f"🔌 {name}: RCon lost", colour=ORANGE)
            embed.description = reason or "the connection dropped"
            _held_footer(embed, held)
            return embed

        if self._fire(route, event.server_id, "rcon-lost", build):
            self._rcon_down.add(event.server_id)

    # -- disk ----------------------------------------------------------------------------

    def check_disk(self) -> bool:
        """Alert every alerts channel once when the data folder's disk runs low."""
        try:
            usage = shutil.disk_usage(self._data_dir)
        except OSError as exc:
            _log.warning("cannot read disk usage of %s: %s", self._data_dir, exc)
            return False
        cfg = self.config
        low = (
            usage.free < cfg.disk_min_free_bytes
            or usage.free < usage.total * cfg.disk_min_free_ratio
        )
        if not low or not self.routes:
            return False
        held = self._gate(0, "disk")
        if held is None:
            return False
        embed = discord.Embed(title="💾 Disk nearly full", colour=RED)
        share = usage.free / usage.total if usage.total else 0.0
        embed.description = (
            f"{format_bytes(usage.free)} free of {format_bytes(usage.total)} ({share:.1%}) "
            "where the servers and logs live. Free some space before a server cannot write."
        )
        _held_footer(embed, held)
        for channel_id in sorted({route.channel_id for route in self.routes.values()}):
            self._outbox_for(channel_id).post(OutMessage(embed=embed)).add_done_callback(
                _log_failure
            )
        self.sent.append((0, "disk"))
        return True

    def _storage(self, event: StorageTrouble) -> None:
        """A failed database write (ENOSPC above all): one alert per episode, host-wide.

        Every server's record keeper reports its own trouble; the operator needs to hear
        it once, in every alerts channel, with what to do.
        """
        if not self.routes:
            return
        if event.recovered:
            self._storage_down.discard(event.server_id)
            if self._storage_down or not self._storage_alerted:
                return  # say "written again" once every server caught up
            self._storage_alerted = False
            embed = discord.Embed(title="💾 The database is written again", colour=GREEN)
            embed.description = "Every server's state was saved again; nothing was lost."
            kind = "storage-restored"
        else:
            self._storage_down.add(event.server_id)
            if self._storage_alerted:
                return
            held = self._gate(0, "storage")
            if held is None:
                return
            self._storage_alerted = True
            title = "💾 Disk full" if event.disk_full else "💾 The database cannot be written"
            embed = discord.Embed(title=title, colour=RED)
            embed.description = (
                f"{clean_game_text(event.reason, 500)}. The servers keep running and what they "
                "do is still tracked; their records are saved as soon as writes work again. "
                "Free some space where the bot keeps its data."
            )
            _held_footer(embed, held)
            kind = "storage"
        for channel_id in sorted({route.channel_id for route in self.routes.values()}):
            self._outbox_for(channel_id).post(OutMessage(embed=embed)).add_done_callback(
                _log_failure
            )
        self.sent.append((0, kind))

    # -- a bound channel the bot cannot post to --------------------------------------------

    def channel_unwritable(
        self, channel_id: int, uses: Sequence[tuple[int, str, Sequence[str]]], missing: str
    ) -> None:
        """Once per episode: tell each server's alerts channel that its `channel_id` (bound for
        the kinds in `uses`: server id, name, kinds) refuses the bot. Nothing when the alerts
        channel is that channel or refuses the bot as well: the log line is all there is."""
        targets: dict[int, list[str]] = {}
        for server_id, server, kinds in uses:
            route = self.routes.get(server_id)
            if route is None or route.channel_id == channel_id:
                continue
            if not self._outbox_for(route.channel_id).writable:
                continue
            name = clean_game_text(server, 100)
            targets.setdefault(route.channel_id, []).append(f"{'/'.join(kinds)} of **{name}**")
        self._channel_alerted[channel_id] = sorted(targets)
        for alerts_id, what in sorted(targets.items()):
            embed = discord.Embed(title="🚫 I cannot post in a bound channel", colour=RED)
            embed.description = (
                f"<#{channel_id}> ({', '.join(what)}) refuses my messages: "
                f"{clean_game_text(missing, 300) or 'missing permissions'}. I stopped posting "
                "there and keep only the newest lines. Give my role the missing permissions in "
                "that channel, then bind it again with `/server channels`."
            )
            self._outbox_for(alerts_id).post(OutMessage(embed=embed)).add_done_callback(
                _log_failure
            )
            self.sent.append((0, "channel-unwritable"))

    def channel_writable(self, channel_id: int) -> None:
        """The channel takes posts again: say so where its trouble was announced."""
        for alerts_id in self._channel_alerted.pop(channel_id, []):
            if not self._outbox_for(alerts_id).writable:
                continue
            embed = discord.Embed(title="✅ I can post in a bound channel again", colour=GREEN)
            embed.description = f"<#{channel_id}> takes my messages again; posting resumed."
            self._outbox_for(alerts_id).post(OutMessage(embed=embed)).add_done_callback(
                _log_failure
            )
            self.sent.append((0, "channel-writable"))

    async def watch_disk(self) -> None:
        while True:
            self.check_disk()
            await asyncio.sleep(self.config.disk_interval)


def _log_failure(future: asyncio.Future[int]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _log.warning("an alert was not delivered: %s", future.exception())
