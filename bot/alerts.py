"""Alerts for a server's alerts channel: crashes, crash loops given up, hangs, failed starts,
RCon lost and restored, a data disk filling up, a host (hosts.toml) away and back, and a
bound channel the bot can no longer post to.

Quiet on purpose: planned stops and restarts never alert (the supervisor reports only
unexpected exits as crashes), a server in maintenance is muted, and one kind of alert for
one server fires at most once per `dedup_seconds`; the next one says how many were held
back. The give-up alert is the only message the bot sends with a mention, of one role.

Everyone in a channel reads an alert, so it is written in the guild's preferred language,
which the channel's outbox knows; it is worded (bot.alert_embeds) when it fires, and a
host-wide alert posted to several channels is worded once per channel.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import discord

from bot.alert_embeds import (
    crash_embed,
    disk_embed,
    failed_embed,
    gave_up_embed,
    host_reachable_embed,
    host_unreachable_embed,
    hung_embed,
    log_block,
    rcon_lost_embed,
    rcon_restored_embed,
    storage_restored_embed,
    storage_trouble_embed,
    unwritable_embed,
    writable_embed,
)
from bot.embeds import Lang
from bot.outbox import Outbox
from bot.outbox_plan import OutMessage
from core.errors import LanguardError
from core.events import (
    Event,
    HostReachable,
    HostUnreachable,
    RconStatus,
    ServerCrashed,
    ServerFailed,
    ServerHung,
    StorageTrouble,
)
from core.services.fleet import Fleet
from core.services.servers import ServerService
from core.supervisor.states import ServerState

# crash_embed and log_block moved to bot.alert_embeds; re-exported for older imports.
__all__ = ["AlertConfig", "AlertDesk", "AlertRoute", "crash_embed", "log_block"]

_log = logging.getLogger(__name__)

GIB = 1024**3
Build = Callable[[int, Lang], discord.Embed]
"""An alert's embed from how many were held back and the channel's language."""
Wording = Callable[[Lang], discord.Embed]
"""An embed in a channel's language (an alert that is never held back, or already gated)."""


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


class AlertDesk:
    """Turns events into alert messages on the outbox of each server's alerts channel."""

    def __init__(
        self,
        servers: ServerService,
        outbox_for: Callable[[int], Outbox],
        *,
        data_dir: Path,
        config: AlertConfig | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        """`fleet` gives an unreachable host's reason as a core error, so each channel reads
        it in its own language (without it, the event's English text is shown)."""
        self._servers = servers
        self._fleet = fleet
        self._hosts_down: set[str] = set()
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
        if isinstance(event, HostUnreachable | HostReachable):
            self._host(event)
            return
        route = self.routes.get(event.server_id)
        if route is None or self._muted(event.server_id):
            return
        if isinstance(event, ServerCrashed):
            self._last_crash[event.server_id] = event
            if event.restart_in_s is None and event.attempt >= event.max_attempts:
                return  # the give-up alert that follows says it all
            self._fire(route, event.server_id, "crash", partial(crash_embed, event))
        elif isinstance(event, ServerFailed):
            if event.crashes > 0:
                crash = self._last_crash.pop(event.server_id, None)
                build = partial(gave_up_embed, event, crash)
                self._fire(route, event.server_id, "gave-up", build, mention=True)
            else:
                self._fire(route, event.server_id, "failed", partial(failed_embed, event))
        elif isinstance(event, ServerHung):
            self._fire(route, event.server_id, "hung", partial(hung_embed, event))
        elif isinstance(event, RconStatus):
            self._rcon(route, event)

    def _muted(self, server_id: int) -> bool:
        condition = self._servers.condition(server_id)
        return condition is None or condition.paused

    def _gate(self, server_id: int, kind: str) -> int | None:
        """None to hold the alert back; else how many were held back since the last one."""
        now = time.monotonic()
        seen = self._seen.get((server_id, kind))
        if seen is not None and now - seen.last < self.config.dedup_seconds:
            seen.held += 1
            return None
        self._seen[(server_id, kind)] = _Seen(now)
        return 0 if seen is None else seen.held

    def _post(self, channel_id: int, word: Wording) -> None:
        """One embed, worded in the channel's language."""
        outbox = self._outbox_for(channel_id)
        outbox.post(OutMessage(embed=word(outbox.locale))).add_done_callback(_log_failure)

    def _fire(
        self, route: AlertRoute, server_id: int, kind: str, build: Build, *, mention: bool = False
    ) -> bool:
        held = self._gate(server_id, kind)
        if held is None:
            return False
        role = route.role_id if mention else None
        content = f"<@&{role}>" if role else None
        outbox = self._outbox_for(route.channel_id)
        future = outbox.post(
            OutMessage(content=content, embed=build(held, outbox.locale), mention_role=role)
        )
        future.add_done_callback(_log_failure)
        self.sent.append((server_id, kind))
        return True

    def _rcon(self, route: AlertRoute, event: RconStatus) -> None:
        if event.connected:
            if event.server_id in self._rcon_down:
                self._rcon_down.discard(event.server_id)
                self._post(route.channel_id, partial(rcon_restored_embed, event.server))
                self.sent.append((event.server_id, "rcon-restored"))
            return
        condition = self._servers.condition(event.server_id)
        if condition is None or condition.state is not ServerState.RUNNING:
            return  # a stop closes the link: expected
        build = partial(rcon_lost_embed, event.server, event.reason or "")
        if self._fire(route, event.server_id, "rcon-lost", build):
            self._rcon_down.add(event.server_id)

    # -- disk ----------------------------------------------------------------------------

    def _broadcast(self, word: Wording) -> None:
        """A host-wide alert: once in every alerts channel, each in its own language."""
        for channel_id in sorted({route.channel_id for route in self.routes.values()}):
            self._post(channel_id, word)

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
        self._broadcast(partial(disk_embed, usage.free, usage.total, held))
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
            self._broadcast(storage_restored_embed)
            self.sent.append((0, "storage-restored"))
            return
        self._storage_down.add(event.server_id)
        if self._storage_alerted:
            return
        held = self._gate(0, "storage")
        if held is None:
            return
        self._storage_alerted = True
        self._broadcast(partial(storage_trouble_embed, event, held))
        self.sent.append((0, "storage"))

    # -- hosts ---------------------------------------------------------------------------

    def _host(self, event: HostUnreachable | HostReachable) -> None:
        """A host away, or back: host-wide, once per change (the registry publishes once
        per change; a host flapping faster than the dedup window is held back). "Back" is
        said only where "away" was."""
        if isinstance(event, HostReachable):
            if event.host in self._hosts_down:
                self._hosts_down.discard(event.host)
                self._broadcast(partial(host_reachable_embed, event.host, event.down_for_s))
                self.sent.append((0, "host-reachable"))
            return
        if not self.routes or event.host in self._hosts_down:
            return
        if self._gate(0, f"host-unreachable:{event.host}") is None:
            return
        self._hosts_down.add(event.host)
        self._broadcast(partial(host_unreachable_embed, event.host, self._host_reason(event)))
        self.sent.append((0, "host-unreachable"))

    def _host_reason(self, event: HostUnreachable) -> LanguardError | str:
        """The registry's own error for this reason (translatable), else the event's text."""
        for status in self._fleet.statuses() if self._fleet is not None else ():
            problem = status.problem
            if status.name == event.host and problem is not None and str(problem) == event.reason:
                return problem
        return event.reason

    # -- a bound channel the bot cannot post to --------------------------------------------

    def channel_unwritable(
        self,
        channel_id: int,
        uses: Sequence[tuple[int, str, Sequence[str]]],
        missing: Sequence[str],
        *,
        gone: bool = False,
        reason: str = "",
    ) -> None:
        """Once per episode: tell each server's alerts channel that its `channel_id` (bound
        for the kinds in `uses`: server id, name, kinds) refuses the bot, lacking the
        permissions `missing` (as Discord's settings name them), `gone`, or for Discord's
        `reason`. Nothing when the alerts channel is that channel or refuses the bot as
        well: the log line is all there is."""
        targets: dict[int, list[tuple[str, Sequence[str]]]] = {}
        for server_id, server, kinds in uses:
            route = self.routes.get(server_id)
            if route is None or route.channel_id == channel_id:
                continue
            if not self._outbox_for(route.channel_id).writable:
                continue
            targets.setdefault(route.channel_id, []).append((server, kinds))
        self._channel_alerted[channel_id] = sorted(targets)
        for alerts_id, what in sorted(targets.items()):
            word = partial(unwritable_embed, channel_id, what, missing, gone, reason)
            self._post(alerts_id, word)
            self.sent.append((0, "channel-unwritable"))

    def channel_writable(self, channel_id: int) -> None:
        """The channel takes posts again: say so where its trouble was announced."""
        for alerts_id in self._channel_alerted.pop(channel_id, []):
            if not self._outbox_for(alerts_id).writable:
                continue
            self._post(alerts_id, partial(writable_embed, channel_id))
            self.sent.append((0, "channel-writable"))

    async def watch_disk(self) -> None:
        while True:
            self.check_disk()
            await asyncio.sleep(self.config.disk_interval)


def _log_failure(future: asyncio.Future[int]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _log.warning("an alert was not delivered: %s", future.exception())
