"""The gateway websocket: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, RESUME, dispatch.

Frames go out as plain JSON text. discord.py asks for `compress=zlib-stream` in the
query string but handles uncompressed text frames, so the fake ignores the parameter
(and records it).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .models import FakeGuild
from .records import GatewayConnection
from .state import GUILD_MEMBERS_INTENT, GUILDS_INTENT, FakeState
from .web_common import state_of

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, RESUME = 0, 1, 2, 3, 6
RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 7, 8, 9, 10, 11


@dataclass(eq=False)
class Session:
    """One identified gateway session (survives a reconnect if the client RESUMEs)."""

    session_id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    ws: web.WebSocketResponse | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready_sent: bool = False
    presence: dict[str, Any] | None = None

    async def send(self, op: int, d: Any, t: str | None = None) -> None:
        if self.ws is None or self.ws.closed:
            return
        frame: dict[str, Any] = {"op": op, "d": d, "s": None, "t": t}
        async with self.lock:
            if op == DISPATCH:
                self.seq += 1
                frame["s"] = self.seq
            await self.ws.send_str(json.dumps(frame))


class Gateway:
    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.sessions: dict[str, Session] = {}
        self._sockets: set[web.WebSocketResponse] = set()

    def live_sessions(self) -> list[Session]:
        return [
            s
            for s in self.sessions.values()
            if s.ready_sent and s.ws is not None and not s.ws.closed
        ]

    async def broadcast(self, event: str, data: dict[str, Any], intent: int | None = None) -> int:
        """Dispatch to every live session subscribed to `intent`; returns how many got it."""
        sent = 0
        for session in self.live_sessions():
            if intent is None or session.intents & intent:
                await session.send(DISPATCH, data, event)
                sent += 1
        return sent

    async def guild_create(self, guild: FakeGuild) -> int:
        """(Re-)send GUILD_CREATE to every live session, shaped by each one's intents."""
        sessions = self.live_sessions()
        for session in sessions:
            await self._guild_create(session, guild)
        return len(sessions)

    async def _guild_create(self, session: Session, guild: FakeGuild) -> None:
        if not session.intents & GUILDS_INTENT:
            return
        payload = guild.payload(
            for_gateway=True,
            bot_user_id=self.state.world.bot.id,
            all_members=bool(session.intents & GUILD_MEMBERS_INTENT),
        )
        await session.send(DISPATCH, payload, "GUILD_CREATE")

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every socket with a resumable code, as a network blip would."""
        for ws in list(self._sockets):
            await ws.close(code=code)

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"fake discord shutting down")

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        state = state_of(request)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        state.gateway_connections.append(GatewayConnection(dict(request.query), state.clock.now()))
        session: Session | None = None
        try:
            hello = {"heartbeat_interval": state.config.heartbeat_interval_ms}
            await ws.send_str(json.dumps({"op": HELLO, "d": hello, "s": None, "t": None}))
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                state.gateway_received.append(frame)
                session = await self._on_frame(ws, frame, session) or session
        finally:
            self._sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
            state.notifier.notify()
        return ws

    async def _on_frame(
        self, ws: web.WebSocketResponse, frame: dict[str, Any], session: Session | None
    ) -> Session | None:
        op, d = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            await ws.send_str(json.dumps({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None}))
        elif op == IDENTIFY:
            return await self._identify(ws, d or {})
        elif op == RESUME:
            return await self._resume(ws, d or {})
        elif op == REQUEST_MEMBERS and session is not None:
            await self._members_chunk(session, d or {})
        elif op == PRESENCE and session is not None:
            session.presence = d
        return None

    async def _identify(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> Session | None:
        state = self.state
        if d.get("token") != state.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = int(d.get("intents", 0))
        privileged = intents & ((1 << 1) | (1 << 8) | (1 << 15))
        if privileged & ~state.config.privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        session = Session(secrets.token_hex(16), intents, d.get("shard"), ws=ws)
        self.sessions[session.session_id] = session
        world = state.world
        guilds = world.bot_guilds()
        ready: dict[str, Any] = {
            "v": 10,
            "user": world.bot.payload(),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "resume_gateway_url": state.base_url.replace("http://", "ws://", 1) + "/gateway",
            "application": {"id": str(world.application_id), "flags": world.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        await session.send(DISPATCH, ready, "READY")
        for guild in guilds:
            await self._guild_create(session, guild)
        session.ready_sent = True
        state.notifier.notify()
        return session

    async def _resume(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> Session | None:
        session = self.sessions.get(str(d.get("session_id")))
        if session is None or d.get("token") != self.state.token:
            await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False, "s": None, "t": None}))
            return None
        session.ws = ws
        await session.send(DISPATCH, {}, "RESUMED")
        self.state.notifier.notify()
        return session

    async def _members_chunk(self, session: Session, d: dict[str, Any]) -> None:
        guild = self.state.world.guilds.get(int(d.get("guild_id", 0)))
        if guild is None:
            return
        members = list(guild.members.values())
        if d.get("user_ids"):
            wanted = {int(u) for u in d["user_ids"]}
            members = [m for m in members if m.id in wanted]
        elif d.get("query"):
            members = [m for m in members if m.user.name.startswith(str(d["query"]))]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if d.get("nonce") is not None:
            chunk["nonce"] = d["nonce"]
        await session.send(DISPATCH, chunk, "GUILD_MEMBERS_CHUNK")
