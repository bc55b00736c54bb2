"""The channel hub: the bus on one side, one outbox per Discord channel on the other.

`listen(bus)` subscribes before the supervisor publishes anything (the subscription
queues events), so after a restart no line re-read from a channel's cursor slips past;
`start()` then loads the bindings, the cursors and the status messages and begins.
`close()` must run while discord.py's HTTP session is still open: it lets each channel's
request in flight finish (and its cursor be saved) before letting go.

Each outbox asks the hub for its channel's language (the guild's preferred locale, read
from discord.py's cache when a message is worded), so what the bot writes in a channel
everyone reads is in that guild's language. Its requests go through `bot.discord_sender`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field

import discord

from bot.alerts import AlertConfig, AlertDesk, AlertRoute
from bot.channel_permissions import bot_permissions, missing_permissions
from bot.discord_sender import UNKNOWN_CHANNEL, DiscordSender
from bot.i18n import guild_locale
from bot.outbox import Outbox
from bot.outbox_types import OutboxConfig, Trouble
from bot.pacing import GlobalPacer
from bot.relay import ChatTarget, LogTarget, Relay
from bot.services_access import services_of
from bot.status_board import StatusBoard
from core.errors import LanguardError
from core.events import (
    Chat,
    EventBus,
    HostReachable,
    HostUnreachable,
    LogLines,
    PlayerJoined,
    PlayerLeft,
    RconStatus,
    ServerCrashed,
    ServerFailed,
    ServerHung,
    ServerStateChanged,
    StorageTrouble,
    Subscription,
)
from core.runtime import Runtime
from core.services.channels import Binding, ChannelKind, ChannelService

__all__ = ["ChannelHub", "HubConfig", "hub_of"]

_log = logging.getLogger(__name__)

EVENTS = (
    LogLines,
    Chat,
    ServerCrashed,
    ServerFailed,
    ServerHung,
    RconStatus,
    ServerStateChanged,
    PlayerJoined,
    PlayerLeft,
    StorageTrouble,
    HostUnreachable,
    HostReachable,
)
ALERT_EVENTS = (
    ServerCrashed,
    ServerFailed,
    ServerHung,
    RconStatus,
    StorageTrouble,
    HostUnreachable,
    HostReachable,
)
STATUS_EVENTS = (
    ServerStateChanged,
    PlayerJoined,
    PlayerLeft,
    RconStatus,
    HostUnreachable,
    HostReachable,
)
"""CPU/RAM (ServerMetrics) is refreshed at the status interval, not per sample; a host
event (server id 0) refreshes every board: a host away shows its servers as unknown."""


@dataclass(frozen=True)
class HubConfig:
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    status_interval: float = 60.0
    global_rate: int = 40
    """Requests per second for all outboxes together (Discord allows 50)."""
    close_timeout: float = 10.0


class ChannelHub:
    def __init__(self, bot: discord.Client, *, config: HubConfig | None = None) -> None:
        self.bot = bot
        """The client that carries the services (bot.services_access), not imported here:
        bot.client imports this module."""
        self.config = config or HubConfig()
        self._global = GlobalPacer(self.config.global_rate)
        self._outboxes: dict[int, Outbox] = {}
        self._sub: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._rebind_lock = asyncio.Lock()
        self._started = False
        self.relay = Relay()
        self._service: ChannelService | None = None
        self._alerts: AlertDesk | None = None
        self._status: StatusBoard | None = None
        self._bindings: list[Binding] = []

    # -- wiring --------------------------------------------------------------------------

    def listen(self, bus: EventBus) -> None:
        """Subscribe now; events queue until `start()`. Call before the supervisor starts."""
        if self._sub is None:
            self._sub = bus.subscribe(*EVENTS)

    @property
    def service(self) -> ChannelService:
        if self._service is None:
            raise RuntimeError("the channel hub is not started")
        return self._service

    @property
    def alerts(self) -> AlertDesk:
        if self._alerts is None:
            raise RuntimeError("the channel hub is not started")
        return self._alerts

    @property
    def status(self) -> StatusBoard:
        if self._status is None:
            raise RuntimeError("the channel hub is not started")
        return self._status

    def _runtime(self) -> Runtime:
        return services_of(self.bot)

    async def start(self) -> None:
        runtime = self._runtime()
        if self._sub is None:
            _log.warning("channel hub subscribed late: lines read before now are not posted")
            self.listen(runtime.bus)
        self._service = runtime.channels  # the instance /server channels calls
        self._service.listeners.append(self.rebind)
        self._alerts = AlertDesk(
            runtime.servers,
            self.outbox,
            data_dir=runtime.settings.data_dir.resolve(),
            config=self.config.alerts,
            fleet=runtime.fleet,
        )
        self._status = StatusBoard(
            runtime.servers,
            self._service,
            self.outbox,
            interval=self.config.status_interval,
            locale_for=lambda channel_id: guild_locale(self.bot, channel_id),
        )
        await self._status.load()
        await self.rebind()
        self._started = True
        self._spawn(self._pump(), "channels:pump")
        self._spawn(self._status.run(), "channels:status")
        self._spawn(self._alerts.watch_disk(), "channels:disk")

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.append(task)

    def outbox(self, channel_id: int) -> Outbox:
        """The one outbox of a channel: everything posted there goes through it."""
        outbox = self._outboxes.get(channel_id)
        if outbox is None:
            outbox = Outbox(
                channel_id,
                DiscordSender(self.bot, channel_id),
                config=self.config.outbox,
                global_pacer=self._global,
                on_trouble=self._channel_trouble,
                locale=lambda: self.locale_of(channel_id),
            )
            self._outboxes[channel_id] = outbox
            outbox.start()
        return outbox

    def locale_of(self, channel_id: int) -> str | None:
        """The language of posts in a channel: its guild's preferred locale code (None, for
        English, while the channel is not in discord.py's cache)."""
        locale = guild_locale(self.bot, channel_id)
        return None if locale is None else locale.value

    def outboxes(self) -> dict[int, Outbox]:
        return dict(self._outboxes)

    @property
    def idle(self) -> bool:
        """Nothing queued anywhere: no event waiting, no outbox with work (tests, shutdown)."""
        waiting = self._sub is not None and self._sub.pending() > 0
        return not waiting and all(o.idle for o in self._outboxes.values())

    def retry(self, channel_ids: Iterable[int]) -> None:
        """Channels just bound again: an unwritable one is tried again now, not in minutes."""
        for channel_id in channel_ids:
            outbox = self._outboxes.get(channel_id)
            if outbox is not None:
                outbox.retry_now()

    def _channel_trouble(self, outbox: Outbox, trouble: Trouble, unwritable: bool) -> None:
        """A channel stopped (or started again) taking posts: one log line, one alert."""
        channel_id = outbox.channel_id
        names = self._runtime().servers.names_by_id()
        uses = [(b.server_id, b.kind.value) for b in self._bindings if b.channel_id == channel_id]
        where = ", ".join(f"{kind} of {names.get(sid, sid)}" for sid, kind in uses) or "unbound"
        if not unwritable:
            _log.info(
                "channel %d (%s) is writable again; posting resumed (%d lines and %d requests "
                "were dropped while it was not)",
                channel_id,
                where,
                trouble.dropped_lines,
                trouble.dropped_requests,
            )
            self.alerts.channel_writable(channel_id)
            return
        missing = self._missing(channel_id, [kind for _, kind in uses])
        gone = missing is None and trouble.code == UNKNOWN_CHANNEL
        cfg = outbox.config
        _log.warning(
            "channel %d (%s) refuses the bot: %s%s; stopped posting there, keeping the newest "
            "%d lines per stream and %d requests (older ones are dropped, counted when it works "
            "again) and trying again every %.0f s or when it is bound again",
            channel_id,
            where,
            trouble.reason,
            f"; missing: {', '.join(missing)}" if missing else "; it is gone" if gone else "",
            cfg.unwritable_max_lines,
            cfg.unwritable_max_requests,
            cfg.unwritable_retry,
        )
        servers = sorted({sid for sid, _ in uses})
        self.alerts.channel_unwritable(
            channel_id,
            [(sid, names.get(sid, str(sid)), [k for s, k in uses if s == sid]) for sid in servers],
            missing or [],
            gone=gone,
            reason=trouble.reason,
        )

    def _missing(self, channel_id: int, kinds: list[str]) -> list[str] | None:
        """What the bot lacks there by discord.py's cache, as Discord's settings name the
        permissions ([] when it sees nothing missing), or None when the channel is not in
        the cache."""
        channel = self.bot.get_channel(channel_id)
        if not isinstance(channel, discord.abc.GuildChannel):
            return None
        permissions = bot_permissions(channel)
        if permissions is None:
            return None
        missing: list[str] = []
        for kind in kinds:
            missing += [
                name for name in missing_permissions(permissions, kind) if name not in missing
            ]
        return missing

    async def rebind(self) -> None:
        """Re-read the bindings and re-wire logs, chat, alerts and status to match."""
        async with self._rebind_lock:
            bindings = await self.service.list()
            await self._apply(bindings)

    async def _apply(self, bindings: list[Binding]) -> None:
        self._bindings = list(bindings)
        names = self._runtime().servers.names_by_id()
        old_logs = {(t.server_id, t.channel_id): t for ts in self.relay.logs.values() for t in ts}
        old_chat = {(t.server_id, t.channel_id): t for ts in self.relay.chat.values() for t in ts}
        logs: dict[int, list[LogTarget]] = {}
        chat: dict[int, list[ChatTarget]] = {}
        routes: dict[int, AlertRoute] = {}
        status: list[tuple[int, int]] = []
        for binding in bindings:
            name = names.get(binding.server_id)
            if name is None:
                continue
            key = (binding.server_id, binding.channel_id)
            if binding.kind is ChannelKind.LOGS:
                target = old_logs.pop(key, None)
                if target is None:
                    target = LogTarget(
                        binding.server_id,
                        name,
                        binding.channel_id,
                        self.outbox(key[1]),
                        self.service,
                    )
                    await target.load_cursors()
                target.log_filter = binding.log_filter
                logs.setdefault(binding.server_id, []).append(target)
            elif binding.kind is ChannelKind.CHAT:
                chat_target = old_chat.pop(key, None) or ChatTarget(
                    binding.server_id, name, binding.channel_id, self.outbox(key[1])
                )
                chat.setdefault(binding.server_id, []).append(chat_target)
            elif binding.kind is ChannelKind.ALERTS:
                routes[binding.server_id] = AlertRoute(binding.channel_id, binding.alert_role)
            else:
                status.append(key)
        self.relay.logs, self.relay.chat = logs, chat
        self.alerts.routes = routes
        for gone in old_logs.values():
            gone.active = False  # its outbox still posts what it has, saving no cursor
            await self.service.forget_channel_cursors(gone.server_id, gone.channel_id)
        await self.status.sync()
        for server_id, channel_id in status:
            self._spawn(self._ensure_status(server_id, channel_id), "channels:status-post")

    async def _ensure_status(self, server_id: int, channel_id: int) -> None:
        try:
            await self.status.ensure(server_id, channel_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the next rebind or /status post tries again
            _log.warning("status message for server %d not posted: %s", server_id, exc)

    async def _pump(self) -> None:
        sub = self._sub
        assert sub is not None
        while True:
            try:
                event = await sub.get()
            except StopAsyncIteration:
                return
            try:
                if isinstance(event, LogLines):
                    self.relay.on_lines(event)
                    continue
                if isinstance(event, Chat):
                    self.relay.on_chat(event)
                    continue
                if isinstance(event, ALERT_EVENTS):
                    self.alerts.handle(event)
                if isinstance(event, STATUS_EVENTS):
                    self.status.touch(event)
            except Exception:  # one bad event must not stop every channel
                _log.exception("handling %s failed", type(event).__name__)

    async def close(self) -> None:
        """Stop; the requests in flight are answered first (and their cursors saved)."""
        if self._sub is not None:
            self._sub.close()
        if self._service is not None and self.rebind in self._service.listeners:
            self._service.listeners.remove(self.rebind)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._status is not None:
            await self._status.close()
        await asyncio.gather(*(o.close(self.config.close_timeout) for o in self._outboxes.values()))


def hub_of(bot: discord.Client) -> ChannelHub:
    """The bot's channel hub (LanguardBot sets `channel_hub` in its setup)."""
    hub = getattr(bot, "channel_hub", None)
    if not isinstance(hub, ChannelHub):
        raise LanguardError("channels are not set up yet; try again in a moment")
    return hub
