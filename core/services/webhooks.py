"""Server events POSTed as signed JSON to the operator's webhook URLs.

The body is `{"event", "at", "server": {"id", "name"}, "data"}`; `X-Languard-Signature` is
`sha256=<hex HMAC-SHA256 of the raw body>` keyed with LANGUARD_WEBHOOK_SECRET (GitHub's
X-Hub-Signature-256 convention), `X-Languard-Delivery` names the delivery (the same on every
retry, so a receiver can drop a repeat) and `X-Languard-Event` the event.

Delivery never holds up the bot: the bus hands events to one bounded queue per URL (the
oldest is dropped when it is full, counted, logged once per episode) and one worker per URL
posts them in order, retrying connection errors, 5xx and 429 with capped backoff (a
Retry-After is honoured), never other 4xx, never following a redirect. URLs may carry
tokens, so logs and metrics name a webhook by its number and host only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from pydantic import SecretStr
from yarl import URL

from core.backoff import Backoff
from core.events import (
    BanChanged,
    Event,
    EventBus,
    PlayerBanned,
    ServerCrashed,
    ServerFailed,
    ServerHung,
    ServerStateChanged,
    Subscription,
)
from core.metrics import MetricFamily

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookService",
    "event_payload",
    "parse_retry_after",
    "sign",
]

_log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Languard-Signature"
EVENT_HEADER = "X-Languard-Event"
DELIVERY_HEADER = "X-Languard-Delivery"
_EVENTS: tuple[type[Event], ...] = (
    ServerStateChanged,
    ServerCrashed,
    ServerFailed,
    ServerHung,
    PlayerBanned,
    BanChanged,
)


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def event_payload(event: Event) -> tuple[str, dict[str, Any]] | None:
    """The webhook name and data of an event (None for events that are not sent).

    Only what an operator needs to react; never secrets, log lines or player addresses.
    """
    if isinstance(event, ServerStateChanged):
        return "server.state_changed", {
            "old": event.old.value,
            "new": event.new.value,
            "reason": event.reason,
            "expected": event.expected,
        }
    if isinstance(event, ServerCrashed):
        return "server.crashed", {
            "exit_code": event.exit_code,
            "signal": event.signal,
            "uptime_s": round(event.uptime_s, 3),
            "attempt": event.attempt,
            "max_attempts": event.max_attempts,
            "restart_in_s": event.restart_in_s,
        }
    if isinstance(event, ServerFailed):
        return "server.failed", {"reason": event.reason, "crashes": event.crashes}
    if isinstance(event, ServerHung):
        return "server.hung", {"reason": event.reason}
    if isinstance(event, PlayerBanned):
        return "player.banned", {
            "name": event.name,
            "reason": event.reason,
            "player_key": event.player_key,
            "guid": event.guid,
        }
    if isinstance(event, BanChanged):
        # an IP is a player's address: the kind is said, the address is not
        shown = None if event.kind == "ip" else event.value
        return f"ban.{event.action}", {
            "ban": event.ban_id,
            "kind": event.kind,
            "value": shown,
            "reason": event.reason,
            "expires_at": event.expires_at,
            "by": event.actor,
        }
    return None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _label(index: int, url: str) -> str:
    """How logs name a webhook: number and host, never the path or query (tokens live there)."""
    try:
        host = URL(url).host or "?"
    except ValueError:
        host = "?"
    return f"webhook {index} ({host})"


@dataclass(frozen=True, slots=True)
class _Delivery:
    id: str
    event: str
    body: bytes


@dataclass
class _Target:
    index: int
    url: str
    limit: int
    queue: deque[_Delivery] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    busy: bool = False
    overflowing: bool = False
    dropped: int = 0
    delivered: int = 0
    failed: int = 0

    @property
    def label(self) -> str:
        return _label(self.index, self.url)

    def offer(self, delivery: _Delivery) -> None:
        if len(self.queue) >= self.limit:
            self.queue.popleft()
            self.dropped += 1
            if not self.overflowing:
                self.overflowing = True
                _log.warning(
                    "%s is not keeping up: its queue of %d is full, dropping the oldest events",
                    self.label,
                    self.limit,
                )
        self.queue.append(delivery)
        self.wake.set()


class WebhookService:
    """Sends server events to every configured URL; `start()` after the loop runs, `close()`."""

    def __init__(
        self,
        bus: EventBus,
        urls: Sequence[str],
        secret: SecretStr | None,
        *,
        queue_size: int = 1000,
        attempts: int = 6,
        timeout: float = 10.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        retry_after_cap: float = 300.0,
    ) -> None:
        if queue_size < 1 or attempts < 1 or timeout <= 0:
            raise ValueError("queue_size and attempts are >= 1, timeout > 0")
        self._secret = secret.get_secret_value().encode() if secret is not None else None
        self._targets = [_Target(i, url, queue_size) for i, url in enumerate(urls, start=1)]
        self._attempts = attempts
        self._timeout = timeout
        self._backoff = (backoff_base, backoff_cap)
        self._retry_after_cap = retry_after_cap
        self._session: aiohttp.ClientSession | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        # subscribed at construction, so nothing published after it is missed
        self._sub: Subscription | None = bus.subscribe(*_EVENTS) if self._targets else None

    @property
    def enabled(self) -> bool:
        return bool(self._targets)

    def start(self) -> None:
        if not self._targets or self._pump_task is not None:
            return
        if self._secret is None:
            _log.warning("LANGUARD_WEBHOOK_SECRET is not set: webhook bodies are not signed")
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"User-Agent": "Languard-Webhook/1"},
        )
        self._pump_task = asyncio.create_task(self._pump(), name="webhooks")
        for target in self._targets:
            self._workers.append(
                asyncio.create_task(self._work(target), name=f"webhook-{target.index}")
            )
        _log.info("webhooks: sending server events to %d URL(s)", len(self._targets))

    async def close(self, drain: float = 1.0) -> None:
        """Stop taking events, give the queues `drain` seconds to empty, then stop."""
        if self._sub is not None:
            self._sub.close()
        deadline = asyncio.get_running_loop().time() + drain
        if self._pump_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(drain):
                    await asyncio.shield(self._pump_task)
        while self._workers and asyncio.get_running_loop().time() < deadline:
            if all(not t.queue and not t.busy for t in self._targets):
                break
            await asyncio.sleep(0.05)
        tasks = [t for t in (self._pump_task, *self._workers) if t is not None]
        self._pump_task, self._workers = None, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None
        left = sum(len(t.queue) for t in self._targets)
        if left:
            _log.warning("webhooks: %d event(s) not delivered at shutdown", left)

    # -- events ----------------------------------------------------------------------------

    async def _pump(self) -> None:
        assert self._sub is not None
        async for event in self._sub:
            payload = event_payload(event)
            if payload is None:
                continue
            name, data = payload
            body = {
                "event": name,
                "at": round(time.time(), 3),
                "server": {"id": event.server_id, "name": event.server},
                "data": data,
            }
            encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            for target in self._targets:
                target.offer(_Delivery(uuid.uuid4().hex, name, encoded))

    async def _work(self, target: _Target) -> None:
        while True:
            if not target.queue:
                target.overflowing = False  # the episode is over: the next overflow logs
                target.wake.clear()
                await target.wake.wait()
                continue
            delivery = target.queue.popleft()
            target.busy = True
            try:
                await self._deliver(target, delivery)
            finally:
                target.busy = False

    async def _deliver(self, target: _Target, delivery: _Delivery) -> None:
        backoff = Backoff(*self._backoff)
        why = ""
        for attempt in range(1, self._attempts + 1):
            status, wait, why = await self._attempt(target, delivery)
            if status == "ok":
                target.delivered += 1
                return
            if status == "rejected":
                target.failed += 1
                _log.warning(
                    "%s rejected %s %s: %s (not retried)",
                    target.label,
                    delivery.event,
                    delivery.id,
                    why,
                )
                return
            if attempt < self._attempts:
                delay = backoff.next()
                if wait is not None:
                    delay = min(wait, self._retry_after_cap)
                _log.debug("%s: %s; retry %d in %.1f s", target.label, why, attempt, delay)
                await asyncio.sleep(delay)
        target.failed += 1
        _log.warning(
            "%s: gave up on %s %s after %d attempts: %s",
            target.label,
            delivery.event,
            delivery.id,
            self._attempts,
            why,
        )

    async def _attempt(self, target: _Target, delivery: _Delivery) -> tuple[str, float | None, str]:
        """("ok" | "retry" | "rejected", Retry-After seconds, why)."""
        session = self._session
        assert session is not None
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: delivery.id,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, delivery.body)
        try:
            async with session.post(
                target.url, data=delivery.body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return "retry", None, f"{type(exc).__name__}: {exc}"[:200]
        if 200 <= status < 300:
            return "ok", None, ""
        if status == 429 or status >= 500:
            return "retry", retry_after, f"HTTP {status}"
        return "rejected", None, f"HTTP {status}"

    # -- metrics ---------------------------------------------------------------------------

    def families(self) -> list[MetricFamily]:
        if not self._targets:
            return []
        queued = MetricFamily(
            "languard_webhook_queued", "gauge", "Events waiting to be sent to each webhook."
        )
        delivered = MetricFamily(
            "languard_webhook_delivered_total", "counter", "Events a webhook accepted (2xx)."
        )
        failed = MetricFamily(
            "languard_webhook_failed_total",
            "counter",
            "Events given up on (rejected with 4xx/3xx, or every attempt failed).",
        )
        dropped = MetricFamily(
            "languard_webhook_dropped_total",
            "counter",
            "Events dropped because a webhook's queue was full.",
        )
        for t in self._targets:
            hook = str(t.index)
            queued.add(len(t.queue) + (1 if t.busy else 0), webhook=hook)
            delivered.add(t.delivered, webhook=hook)
            failed.add(t.failed, webhook=hook)
            dropped.add(t.dropped, webhook=hook)
        return [queued, delivered, failed, dropped]

    def stats(self) -> list[dict[str, int]]:
        """Per-webhook counts, in URL order (for tests and /host-style reports)."""
        return [
            {
                "queued": len(t.queue),
                "delivered": t.delivered,
                "failed": t.failed,
                "dropped": t.dropped,
            }
            for t in self._targets
        ]
