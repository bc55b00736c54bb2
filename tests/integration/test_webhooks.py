"""Webhooks against a real aiohttp receiver on 127.0.0.1: retries, no retries, a receiver
that hangs, and the runtime wiring (a fake game server's start reaches the receiver)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from core.config import Settings
from core.events import EventBus, ServerStateChanged
from core.runtime import Runtime
from core.services.audit import Actor
from core.services.webhooks import WebhookService
from core.supervisor.states import ServerState
from data.repositories.settings import SettingsRepository
from tests.fakes.fake_profile import FakeProfile
from tests.integration.supervision import FAST, kill_groups

SECRET = "receiver-shares-this-secret"
S = ServerState


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def signed(self) -> bool:
        expected = "sha256=" + hmac.new(SECRET.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("X-Languard-Signature", ""), expected)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Reply = Callable[[int], Awaitable[web.Response]]


@dataclass
class Receiver:
    reply: Reply
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        received = Received(dict(request.headers), await request.read())
        self.requests.append(received)
        return await self.reply(len(self.requests))


@contextlib.asynccontextmanager
async def receiver(reply: Reply, path: str = "/hook") -> AsyncIterator[Receiver]:
    recv = Receiver(reply)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recv.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    recv.url = f"http://{host}:{port}{path}"
    try:
        yield recv
    finally:
        await runner.cleanup()


def status(code: int, **headers: str) -> web.Response:
    return web.Response(status=code, headers=headers)


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.02)
    return result


def changed(new: ServerState = S.RUNNING, sid: int = 7) -> ServerStateChanged:
    return ServerStateChanged(server_id=sid, server="alpha", old=S.STARTING, new=new, reason="up")


@contextlib.asynccontextmanager
async def service(bus: EventBus, url: str, **options: Any) -> AsyncIterator[WebhookService]:
    options = {"backoff_base": 0.05, "backoff_cap": 0.2, **options}
    hooks = WebhookService(bus, [url], SecretStr(SECRET), **options)
    hooks.start()
    try:
        yield hooks
    finally:
        async with asyncio.timeout(15):
            await hooks.close()


async def test_two_500s_then_200_delivers_once_with_a_valid_signature() -> None:
    async def reply(n: int) -> web.Response:
        return status(500 if n <= 2 else 200)

    bus = EventBus()
    async with receiver(reply) as recv, service(bus, recv.url) as hooks:
        bus.publish(changed())
        await until(lambda: hooks.stats()[0]["delivered"] == 1, 20, "the delivery")
        await asyncio.sleep(0.5)  # room for a wrong extra attempt to show up
        assert len(recv.requests) == 3
        assert all(r.signed for r in recv.requests)
        assert len({r.headers["X-Languard-Delivery"] for r in recv.requests}) == 1
        body = recv.requests[-1].json
        assert body["event"] == "server.state_changed"
        assert recv.requests[-1].headers["X-Languard-Event"] == "server.state_changed"
        assert body["server"] == {"id": 7, "name": "alpha"}
        assert body["data"] == {
            "old": "starting",
            "new": "running",
            "reason": "up",
            "expected": True,
        }
        assert abs(body["at"] - time.time()) < 60
        assert SECRET not in recv.requests[-1].body.decode()
        assert hooks.stats()[0] == {"queued": 0, "delivered": 1, "failed": 0, "dropped": 0}


async def test_400_is_not_retried() -> None:
    async def reply(n: int) -> web.Response:
        return status(400)

    bus = EventBus()
    async with receiver(reply) as recv, service(bus, recv.url) as hooks:
        bus.publish(changed())
        await until(lambda: hooks.stats()[0]["failed"] == 1, 20, "the rejection")
        bus.publish(changed(S.STOPPING))  # the worker moved on: the next event goes out
        await until(lambda: hooks.stats()[0]["failed"] == 2, 20, "the second rejection")
        assert len(recv.requests) == 2
        assert [r.json["data"]["new"] for r in recv.requests] == ["running", "stopping"]


async def test_429_waits_for_retry_after() -> None:
    async def reply(n: int) -> web.Response:
        return status(429, **{"Retry-After": "1"}) if n == 1 else status(204)

    bus = EventBus()
    async with receiver(reply) as recv, service(bus, recv.url) as hooks:
        started = time.monotonic()
        bus.publish(changed())
        await until(lambda: hooks.stats()[0]["delivered"] == 1, 20, "the delivery")
        assert time.monotonic() - started >= 0.9  # the backoff alone would be 0.05 s
        assert len(recv.requests) == 2


async def test_redirects_are_not_followed() -> None:
    async def reply(n: int) -> web.Response:
        return status(302, Location="/elsewhere")

    bus = EventBus()
    async with receiver(reply) as recv, service(bus, recv.url) as hooks:
        bus.publish(changed())
        await until(lambda: hooks.stats()[0]["failed"] == 1, 20, "the rejection")
        assert [r for r in recv.requests if "elsewhere" in r.body.decode()] == []
        assert len(recv.requests) == 1


async def test_a_hanging_receiver_blocks_neither_the_bus_nor_close() -> None:
    release = asyncio.Event()

    async def reply(n: int) -> web.Response:
        async with asyncio.timeout(30):
            await release.wait()
        return status(200)

    bus = EventBus()
    other = bus.subscribe(ServerStateChanged)  # another listener must get everything at once
    async with receiver(reply) as recv:
        hooks = WebhookService(bus, [recv.url], SecretStr(SECRET), queue_size=5, timeout=10.0)
        hooks.start()
        try:
            bus.publish(changed(sid=1))
            await until(lambda: recv.requests, 10, "the first request to hang")
            for i in range(50):
                bus.publish(changed(sid=100 + i))
            assert other.pending() == 51  # publishing returned for every one of them
            await until(lambda: hooks.stats()[0]["dropped"] == 45, 10, "drops past the queue")
            assert hooks.stats()[0]["queued"] == 5
            began = time.monotonic()
            async with asyncio.timeout(10):
                await hooks.close()
            assert time.monotonic() - began < 8  # not the 10 s request timeout
        finally:
            release.set()
            other.close()
            await hooks.close()


async def test_runtime_sends_a_fake_servers_start(tmp_path: Path) -> None:
    async def reply(n: int) -> web.Response:
        return status(200)

    async with receiver(reply) as recv:
        settings = Settings(
            data_dir=tmp_path / "data",
            webhook_urls=(recv.url,),
            webhook_secret=SecretStr(SECRET),
        )
        runtime = await Runtime.open(settings, [FakeProfile()])
        pids: set[int] = set()
        try:
            actor = Actor(1, "admin")
            created = await runtime.servers.create(actor, "alpha", "fake")
            await SettingsRepository(runtime.db).set_many(created.id, FAST)  # quick stop
            await runtime.servers.start(actor, "alpha")
            server = runtime.supervisor.by_name("alpha")
            if server.handle is not None:
                pids.add(server.handle.pid)

            def arrived(state: str) -> bool:
                return any(
                    r.json["event"] == "server.state_changed" and r.json["data"]["new"] == state
                    for r in recv.requests
                )

            await until(lambda: arrived("running"), 30, "running to reach the receiver")
            await runtime.servers.stop(actor, "alpha")
            await until(lambda: arrived("stopped"), 30, "stopped to reach the receiver")
            assert all(r.signed for r in recv.requests)
            assert all(r.json["server"]["name"] == "alpha" for r in recv.requests)
            text = runtime.metrics.render()
            assert 'languard_webhook_delivered_total{webhook="1"}' in text
            assert 'languard_server_state{server="alpha",state="stopped"} 1' in text
        finally:
            async with asyncio.timeout(30):
                await runtime.close()
            kill_groups(pids)


async def test_bans_made_in_the_bot_reach_the_webhook_without_addresses(tmp_path: Path) -> None:
    """Seen: only bans a game reported were sent; `/bans add` and `/bans remove` (the bot's
    own record) reached no webhook."""

    async def reply(n: int) -> web.Response:
        return status(200)

    async with receiver(reply) as recv:
        settings = Settings(
            data_dir=tmp_path / "data",
            webhook_urls=(recv.url,),
            webhook_secret=SecretStr(SECRET),
        )
        runtime = await Runtime.open(settings, [FakeProfile()])
        try:
            actor = Actor(1, "admin")
            guid = "0123456789abcdef0123456789abcdef"
            by_guid = await runtime.bans.add(actor, guid, "perm", "cheating")
            await runtime.bans.add(actor, "203.0.113.9", "1d", "spam")
            await runtime.bans.remove(actor, by_guid.id)

            def events() -> list[str]:
                return [r.json["event"] for r in recv.requests]

            await until(lambda: len(events()) >= 3, 30, "three ban events")
            assert events() == ["ban.added", "ban.added", "ban.removed"]
            first, second, third = (r.json["data"] for r in recv.requests)
            assert first["value"] == guid and first["reason"] == "cheating"
            assert first["by"] == "admin" and first["expires_at"] is None
            assert second["kind"] == "ip" and second["value"] is None
            assert "203.0.113.9" not in json.dumps([r.json for r in recv.requests])
            assert third["ban"] == by_guid.id
            assert all(r.signed for r in recv.requests)
        finally:
            async with asyncio.timeout(30):
                await runtime.close()
