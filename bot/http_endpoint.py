"""A loopback HTTP endpoint beside the Discord bot: `/healthz` for probes, `/metrics` for
Prometheus.

It is a second front end of the core (like the cogs, it only reads services) and is off
unless LANGUARD_HTTP_ADDR is set; the setting only accepts loopback addresses because the
endpoint has no authentication. Requests are never read past their headers, and a port
already taken costs one log line, not the bot.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Protocol

from aiohttp import web
from discord.gateway import DiscordWebSocket

from bot.channels import ChannelHub
from bot.services_access import HasServices
from core.metrics import CONTENT_TYPE, MetricFamily

__all__ = ["HttpEndpoint", "gateway_connected", "start_http_endpoint"]

_log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 5.0
"""A health check answers within this many seconds, whatever hangs below it."""
DB_PROBE_TIMEOUT = 2.0


class EndpointHost(HasServices, Protocol):
    """What the endpoint reads of the client (bot.client.LanguardBot, which imports this
    module: naming that class here would tie the two in a circle)."""

    channel_hub: ChannelHub

    @property
    def ws(self) -> DiscordWebSocket | None: ...

    @property
    def latency(self) -> float: ...

    def is_closed(self) -> bool: ...

    def is_ready(self) -> bool: ...


def gateway_connected(bot: EndpointHost) -> bool:
    """Logged in, ready, and the gateway websocket is open (discord.py's own view)."""
    ws = bot.ws
    return not bot.is_closed() and bot.is_ready() and ws is not None and ws.open


class HttpEndpoint:
    """The running endpoint (or none: `address` is None when it is off or could not bind)."""

    def __init__(self, bot: EndpointHost) -> None:
        self._bot = bot
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> None:
        app = web.Application(client_max_size=1024)
        app.router.add_get("/healthz", self._healthz, allow_head=False)
        app.router.add_get("/metrics", self._metrics, allow_head=False)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=2.0, keepalive_timeout=5
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=16)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            _log.error(
                "health endpoint not started: cannot listen on %s:%d (%s); the bot runs on",
                host,
                port,
                exc.strerror or exc,
            )
            return
        self._runner = runner
        self.address = (host, port)
        _log.info("health endpoint on http://%s:%d (/healthz, /metrics)", *self.address)

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        self.address = None
        if runner is not None:
            await runner.cleanup()

    # -- handlers --------------------------------------------------------------------------

    async def health(self) -> dict[str, object]:
        """Each check by name; the endpoint is healthy when every boolean is true."""
        bot = self._bot
        runtime = bot.runtime
        report: dict[str, object] = {
            "gateway": gateway_connected(bot),
            "database": False,
            "supervisor": False,
        }
        if runtime is not None:
            metrics = runtime.metrics
            report["database"] = metrics.storage_ok and await metrics.database_writable(
                DB_PROBE_TIMEOUT
            )
            report["supervisor"] = metrics.supervisor_alive()
            age = metrics.heartbeat_age()
            report["supervisor_heartbeat_age_s"] = None if age is None else round(age, 3)
            report["event_loop_lag_s"] = round(metrics.loop_lag, 4)
            report["servers"] = len(runtime.supervisor.all())
        latency = bot.latency
        report["gateway_latency_s"] = round(latency, 4) if math.isfinite(latency) else None
        return report

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                report = await self.health()
        except TimeoutError:
            report = {"gateway": False, "database": False, "supervisor": False, "timeout": True}
        ok = all(value for value in report.values() if isinstance(value, bool))
        return web.json_response(report, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        runtime = self._bot.runtime
        if runtime is None:
            return web.Response(status=503, text="not set up yet\n")
        text = runtime.metrics.render(self._front_end_families())
        response = web.Response(body=text.encode())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    def _front_end_families(self) -> list[MetricFamily]:
        bot = self._bot
        connected = MetricFamily(
            "languard_gateway_connected", "gauge", "1 while the Discord gateway is connected."
        ).add(1 if gateway_connected(bot) else 0)
        latency = MetricFamily(
            "languard_gateway_latency_seconds",
            "gauge",
            "Time between a gateway heartbeat and its acknowledgement.",
        ).add(bot.latency)
        lines = MetricFamily(
            "languard_outbox_backlog_lines",
            "gauge",
            "Log lines waiting in each Discord channel's outbox.",
        )
        requests = MetricFamily(
            "languard_outbox_backlog_requests",
            "gauge",
            "Messages (posts, edits, deletes) waiting in each Discord channel's outbox.",
        )
        for channel_id, outbox in sorted(bot.channel_hub.outboxes().items()):
            lines.add(outbox.pending_lines, channel=str(channel_id))
            requests.add(outbox.pending_requests, channel=str(channel_id))
        return [connected, latency, lines, requests]


async def start_http_endpoint(bot: EndpointHost) -> HttpEndpoint:
    """Serve `/healthz` and `/metrics` on LANGUARD_HTTP_ADDR (nothing when it is unset)."""
    endpoint = HttpEndpoint(bot)
    where = bot.settings.http_host_port
    if where is not None:
        await endpoint.start(*where)
    return endpoint
