"""Shared bits for the route modules: app/request keys and small helpers."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .bodies import Body
from .errors import ApiError
from .records import RequestRecord
from .state import FakeState

STATE = web.AppKey("fake_discord_state", FakeState)
BODY = web.RequestKey("fake_discord_body", Body)
RECORD = web.RequestKey("fake_discord_record", RequestRecord)

API = "/api/v10"


def state_of(request: web.Request) -> FakeState:
    return request.app[STATE]


def body_of(request: web.Request) -> Body:
    return request[BODY]


def snowflake(request: web.Request, name: str, code: int = 0, what: str = "resource") -> int:
    """A path id; a malformed one is a 404 (Discord answers similarly)."""
    raw = request.match_info[name]
    if not raw.isdigit():
        raise ApiError(404, code, f"Unknown {what}")
    return int(raw)


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with the exact `Content-Type: application/json` discord.py's `json_or_text` wants
    (it compares the header verbatim, so no `; charset=...`)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(status=status, body=json.dumps(data).encode(), headers=all_headers)


def no_content() -> web.Response:
    return web.Response(status=204)
