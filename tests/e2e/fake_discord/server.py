"""`FakeDiscord`: the aiohttp server (REST + gateway + CDN on 127.0.0.1) and its test API."""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

from . import cdn, routes_channels, routes_core, routes_interactions
from .bodies import read_body
from .clock import Clock
from .driver import InteractionDriver
from .errors import ApiError
from .gateway import Gateway
from .queries import RecordQueries
from .records import RequestRecord
from .state import FakeConfig, FakeState
from .web_common import API, BODY, RECORD, STATE, ok

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeDiscord(InteractionDriver, RecordQueries):
    """A local Discord for the real discord.py client. Start it, route discord.py to it
    (see `harness.route_discord_to`), run a client, then drive it with `invoke_slash`,
    `click_button`, ... and assert on the recorded messages and requests.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        clock: Clock | None = None,
        config: FakeConfig | None = None,
        port: int = 0,
    ) -> None:
        self.clock = clock or Clock()
        self.config = config or FakeConfig()
        self.state = FakeState(token, self.clock, self.config)
        self.gateway = Gateway(self.state)
        self.state.broadcast = self._broadcast
        self._runner: web.AppRunner | None = None
        self.port = port
        """0: the OS chooses at start; else this port (a bot process was told it in advance)."""

    # ----- lifecycle ----------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app[STATE] = self.state
        routes_core.add_routes(app)
        routes_channels.add_routes(app)
        routes_interactions.add_routes(app)
        cdn.add_routes(app)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/", self.gateway.handle)
        app.on_shutdown.append(self._on_shutdown)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        # Port 0 lets the OS choose; read back the port the runner actually bound.
        self.port = int(self._runner.addresses[0][1])
        self.state.base_url = f"http://127.0.0.1:{self.port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.gateway.close()

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ----- addresses ----------------------------------------------------------------------

    @property
    def token(self) -> str:
        return self.state.token

    @property
    def base_url(self) -> str:
        return self.state.base_url

    @property
    def api_base(self) -> str:
        return self.state.base_url + API

    @property
    def gateway_url(self) -> str:
        return self.state.base_url.replace("http://", "ws://", 1) + "/gateway/"

    @property
    def cdn_base(self) -> str:
        return self.state.base_url + "/cdn"

    # ----- middleware: record, authenticate, chaos, render errors --------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        state = self.state
        if not request.path.startswith(API):
            return await handler(request)
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            arrived_at=state.clock.now(),
        )
        state.requests.append(record)
        if state.config.outage_status is not None:  # Discord is down: every API call fails
            record.status = state.config.outage_status
            state.notifier.notify()
            return ok({"message": "fake outage", "code": 0}, status=state.config.outage_status)
        try:
            body = await read_body(request)
            record.payload, record.uploads = body.payload, body.uploads
            request[BODY] = body
            request[RECORD] = record
            resource = request.match_info.route.resource
            record.route = resource.canonical if resource is not None else ""
            if resource is None:
                state.unhandled.append(record)
                raise ApiError(404, 0, "404: Not Found")
            if (
                _needs_auth(request.path)
                and request.headers.get("Authorization") != f"Bot {state.token}"
            ):
                raise ApiError(401, 0, "401: Unauthorized")
            retry_after = state.ratelimits.roll_chaos(request.method, request.path, record)
            if retry_after is not None:
                record.chaos = True
                headers = state.ratelimits.headers_for_429(None, retry_after, "fake-chaos")
                response: web.StreamResponse = ok(
                    {
                        "message": "You are being rate limited.",
                        "retry_after": retry_after,
                        "global": False,
                    },
                    status=429,
                    headers=headers,
                )
            else:
                response = await handler(request)
        except ApiError as exc:
            record.error_code = exc.code
            response = ok(exc.body(), status=exc.status)
        except web.HTTPException:
            raise
        except Exception:
            # A bug in the fake, not in the bot: 503 is not retried by discord.py, so the
            # failure is fast; teardown's `assert_clean()` reports the traceback.
            state.internal_errors.append(traceback.format_exc())
            response = ok({"message": "fake discord internal error", "code": 0}, status=503)
        record.status = response.status
        state.notifier.notify()
        return response


def _needs_auth(path: str) -> bool:
    """Interaction callbacks and webhook-token routes carry no bot token."""
    tail = path[len(API) :]
    return not (tail.startswith("/interactions/") or tail.startswith("/webhooks/"))
