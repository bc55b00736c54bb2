"""A fake BattlEye RCon server speaking the real UDP protocol on loopback.

Embed it (`FakeBattlEyeServer`, `async start()` / `async stop()`) or run it as a process:
`python -m tests.fakes.battleye_server --port N --password P` prints the bound port as its
first stdout line and stops on SIGTERM. The protocol rules live in the pure
`core.rcon.battleye_server.ServerProtocol`; this module adds the socket, the clock, the console
commands and a lossy network (loss each way, duplication, reordering, delay; seeded), plus a
hostile mode that answers one command with an endless multipart reply (`flood_on`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import socket
from collections.abc import Callable
from typing import Any

from core.rcon.battleye_packets import CommandReplyPart
from core.rcon.battleye_server import (
    Address,
    AdminDropped,
    AdminLoggedIn,
    CommandReceived,
    ServerEvent,
    ServerProtocol,
)

__all__ = [
    "DEFAULT_BANS",
    "DEFAULT_PLAYERS",
    "FakeBattlEyeServer",
    "default_handler",
    "players_handler",
    "players_reply",
]

_log = logging.getLogger(__name__)

CommandHandler = Callable[[str], str]

DEFAULT_PLAYERS = (
    "Players on server:\n"
    "[#] [IP Address]:[Port] [Ping] [GUID] [Name]\n"
    "--------------------------------------------------\n"
    "0   76.108.91.78:2304     63   80a5885ebe2420bab5e158a310fcbc7d(OK) Bravo17\n"
    "3   37.232.159.82:2354    105  20446897121fafa82c1069ed07820f27(OK) Максим (Lobby)\n"
    "(2 players in total)"
)

DEFAULT_BANS = (
    "GUID Bans:\n"
    "[#] [GUID] [Minutes left] [Reason]\n"
    "----------------------------------------\n"
    "0  331e64806b30277076963283eea16438 perm TeamKill. Ban perm\n"
    "1  c20b9665b392c4c7633d14b151a4deb3 8971 [admin][18.07.15 13:38:14] Sabotage\n"
    "\n"
    "IP Bans:\n"
    "[#] [IP Address] [Minutes left] [Reason]\n"
    "----------------------------------------------\n"
    "2  212.90.39.93    perm Admin Ban TK"
)

_NAMES = ("Bravo17", "Максим", "Kauldron", "MM Leon", "Zoë (medic)", "李小龙", "NZ", "dzo: tester")


def players_reply(count: int) -> str:
    """A `players` reply listing `count` players in the real column layout (§2.1 of the
    reference); names carry spaces, parentheses and non-ASCII letters. 40 players make about
    3.4 KB, three parts at the default part size."""
    rows = []
    for i in range(count):
        address = f"10.{i // 250}.{i % 250}.{7 + i % 200}:{2304 + i}"
        guid = f"{(i * 2654435761) & 0xFFFFFFFF:08x}" * 4
        lobby = " (Lobby)" if i % 7 == 3 else ""
        rows.append(f"{i:<4}{address:<22}{20 + i % 180:<5}{guid}(OK) {_NAMES[i % 8]} {i}{lobby}")
    head = "Players on server:\n[#] [IP Address]:[Port] [Ping] [GUID] [Name]\n" + "-" * 50
    return "\n".join([head, *rows, f"({count} players in total)"])


def players_handler(count: int) -> CommandHandler:
    """`default_handler`, except that `players` lists `count` players."""
    reply = players_reply(count)

    def handler(command: str) -> str:
        if command.split(" ", 1)[0].lower() == "players":
            return reply
        return default_handler(command)

    return handler


_MISSIONS = "Missions on server:\nco10_Escape.Altis.pbo\nMP_Marksmen_01.Altis.pbo"


def default_handler(command: str) -> str:
    """A few console commands with realistic output; anything else is `Unknown command`."""
    verb = command.split(" ", 1)[0].lower()
    if verb == "players":
        return DEFAULT_PLAYERS
    if verb == "bans":
        return DEFAULT_BANS
    if verb == "missions":
        return _MISSIONS
    if verb == "version":
        return "2.18.152302"
    if verb == "" or verb.startswith("#") or verb in _SILENT:
        return ""
    return "Unknown command"


_SILENT = frozenset(
    {"kick", "ban", "addban", "removeban", "loadbans", "writebans", "loadscripts", "loadevents"}
    | {"maxping", "rconpassword"}
)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, server: FakeBattlEyeServer) -> None:
        self._server = server

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._server._on_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        _log.debug("fake BattlEye socket error: %s", exc)


class FakeBattlEyeServer:
    """Embeddable fake RCon server.

    `handler` answers every command except the empty keepalive (answered empty) and the
    built-ins that need the caller's identity (`say -1 text` broadcasts
    `RCon admin #n: (Global) text`; `admins` lists the sessions). `commands` records what ran.
    Network knobs are probabilities (`loss` both ways, or `inbound_loss` for what the server
    receives and `outbound_loss` for what it sends; `duplicate` and `reorder` outgoing) and a
    fixed outgoing `delay` in seconds, all driven by `random.Random(seed)`.

    `flood_on`: that command is answered with an endless multipart reply (255-part headers,
    fresh `flood_part`-byte bodies, indices cycling), `flood_bytes` in all, as a hostile or
    broken server would; `flooded` counts the bytes sent.
    """

    def __init__(
        self,
        password: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        handler: CommandHandler | None = None,
        part_size: int = 1400,
        idle_timeout: float = 45.0,
        resend_interval: float = 2.0,
        resend_attempts: int = 5,
        loss: float = 0.0,
        inbound_loss: float | None = None,
        outbound_loss: float | None = None,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        delay: float = 0.0,
        seed: int = 0,
        flood_on: str | None = None,
        flood_part: int = 60_000,
        flood_bytes: int = 64 << 20,
    ) -> None:
        self.host = host
        self._port = port
        self.handler: CommandHandler = handler or default_handler
        self.proto = ServerProtocol(
            password,
            part_size=part_size,
            idle_timeout=idle_timeout,
            resend_interval=resend_interval,
            resend_attempts=resend_attempts,
        )
        self.inbound_loss = loss if inbound_loss is None else inbound_loss
        self.outbound_loss = loss if outbound_loss is None else outbound_loss
        self.duplicate = duplicate
        self.reorder = reorder
        self.delay = delay
        self._rng = random.Random(seed)
        self._tick_every = max(0.01, min(0.25, resend_interval / 4, idle_timeout / 10))
        self._transport: asyncio.DatagramTransport | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._delayed: set[asyncio.TimerHandle] = set()
        self._followups: list[str] | None = None
        self.flood_on = flood_on
        self.flood_part = flood_part
        self.flood_bytes = flood_bytes
        self.flooded = 0
        self._floods: set[asyncio.Task[None]] = set()
        self.commands: list[str] = []
        """Every command executed (not the answers served from the repeat cache)."""
        self.events: list[ServerEvent] = []
        """Logins, refusals and drops, in order (commands are in `commands`)."""

    def __repr__(self) -> str:
        return f"<FakeBattlEyeServer {self.host}:{self._port} running={self.running}>"

    @property
    def port(self) -> int:
        """The bound port (stays the same across stop/start)."""
        return self._port

    @property
    def running(self) -> bool:
        return self._transport is not None

    @property
    def loss(self) -> float:
        """The larger of the two loss rates; setting it sets both."""
        return max(self.inbound_loss, self.outbound_loss)

    @loss.setter
    def loss(self, value: float) -> None:
        self.inbound_loss = self.outbound_loss = value

    async def start(self) -> None:
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self), local_addr=(self.host, self._port)
        )
        self._transport = transport
        self._port = transport.get_extra_info("sockname")[1]
        try:  # room for 256 commands in flight from each client
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        except OSError as exc:
            _log.debug("could not enlarge the UDP receive buffer: %s", exc)
        self._ticker = asyncio.create_task(self._tick_loop(), name="fake-battleye-tick")
        _log.debug("fake BattlEye RCon listening on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        """Close the socket and forget all sessions (a stopped server remembers nothing)."""
        ticker, self._ticker = self._ticker, None
        tasks = [*self._floods, *([] if ticker is None else [ticker])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for handle in self._delayed:
            handle.cancel()
        self._delayed.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.proto.forget_all()

    async def __aenter__(self) -> FakeBattlEyeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def restart(self) -> None:
        """Forget every session, as BattlEye does when the game server restarts."""
        self.proto.forget_all()

    def broadcast(self, text: str) -> None:
        """Send a server message to every logged-in admin (resent until acknowledged).

        Called from inside a command handler, the message goes out after that command's reply.
        """
        if self._followups is not None:
            self._followups.append(text)
            return
        self.proto.broadcast(text, self._now())
        self._flush()

    @property
    def admins(self) -> list[tuple[int, Address]]:
        """Logged-in admins as (admin id, client address)."""
        return self.proto.admins

    def send_raw(self, data: bytes, addr: Address) -> None:
        """Send arbitrary bytes (e.g. garbage) to `addr`, bypassing the protocol and the knobs."""
        if self._transport is not None:
            self._transport.sendto(data, addr)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _on_datagram(self, data: bytes, addr: Address) -> None:
        if self.inbound_loss and self._rng.random() < self.inbound_loss:
            return
        now = self._now()
        for event in self.proto.receive(data, addr, now):
            if isinstance(event, CommandReceived) and event.command == self.flood_on:
                self.commands.append(event.command)
                task = asyncio.create_task(self._flood(event.seq, addr), name="fake-be-flood")
                self._floods.add(task)
                task.add_done_callback(self._floods.discard)
            elif isinstance(event, CommandReceived):
                self._followups = []
                try:
                    reply = self._run(event)
                finally:
                    followups, self._followups = self._followups, None
                self.proto.reply(addr, event.seq, reply, now)
                for text in followups:
                    self.proto.broadcast(text, now)
            else:
                self._note(event)
        self._flush()

    def _run(self, event: CommandReceived) -> str:
        command = event.command
        if not command:
            return ""  # the keepalive: acknowledged with an empty reply, not a command
        self.commands.append(command)
        if command.startswith("say -1 "):
            self.broadcast(f"RCon admin #{event.admin_id}: (Global) {command[7:]}")
            return ""
        if command == "admins":
            rows = "".join(f"\n{i} {a[0]}:{a[1]}" for i, a in self.proto.admins)
            return "Connected RCon admins:\n[#] [IP Address]:[Port]\n" + "-" * 29 + rows
        try:
            return self.handler(command)
        except Exception:
            _log.exception("fake BattlEye command handler failed")
            return "Unknown command"

    async def _flood(self, seq: int, addr: Address) -> None:
        """An endless reply: parts of a 255-part answer with ever new bodies, paced one
        datagram per loop turn so a client in the same process keeps up."""
        n = 0
        while self.flooded < self.flood_bytes and self._transport is not None:
            body = (b"%09d " % n) * (self.flood_part // 10)
            self._transport.sendto(CommandReplyPart(seq, 255, n % 255, body).to_bytes(), addr)
            self.flooded += len(body)
            n += 1
            await asyncio.sleep(0)

    def _note(self, event: ServerEvent) -> None:
        self.events.append(event)
        if isinstance(event, AdminLoggedIn | AdminDropped):
            _log.debug("fake BattlEye: %s", event)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick_every)
            for event in self.proto.tick(self._now()):
                self._note(event)
            self._flush()

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            self.proto.datagrams_to_send()
            return
        rng = self._rng
        loss = self.outbound_loss
        impaired = loss or self.duplicate or self.reorder or self.delay
        for datagram, addr in self.proto.datagrams_to_send():
            if not impaired:
                transport.sendto(datagram, addr)
                continue
            if loss and rng.random() < loss:
                continue
            copies = 2 if self.duplicate and rng.random() < self.duplicate else 1
            for _ in range(copies):
                wait = self.delay
                if self.reorder and rng.random() < self.reorder:
                    wait += rng.uniform(0.002, 0.02)
                if wait <= 0:
                    transport.sendto(datagram, addr)
                else:
                    self._later(wait, datagram, addr)

    def _later(self, wait: float, datagram: bytes, addr: Address) -> None:
        loop = asyncio.get_running_loop()

        def send() -> None:
            self._delayed.discard(handle)
            if self._transport is not None:
                self._transport.sendto(datagram, addr)

        handle = loop.call_later(wait, send)
        self._delayed.add(handle)


async def _main(args: argparse.Namespace) -> None:
    server = FakeBattlEyeServer(
        args.password,
        host=args.host,
        port=args.port,
        handler=None if args.players is None else players_handler(args.players),
        part_size=args.part_size,
        idle_timeout=args.idle_timeout,
        loss=args.loss,
        inbound_loss=args.inbound_loss,
        outbound_loss=args.outbound_loss,
        duplicate=args.duplicate,
        reorder=args.reorder,
        delay=args.delay,
        seed=args.seed,
    )
    await server.start()
    print(server.port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake BattlEye RCon server (UDP).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--password", required=True)
    parser.add_argument("--part-size", type=int, default=1400)
    parser.add_argument("--idle-timeout", type=float, default=45.0)
    parser.add_argument("--loss", type=float, default=0.0, help="both ways")
    parser.add_argument("--inbound-loss", type=float, default=None)
    parser.add_argument("--outbound-loss", type=float, default=None)
    parser.add_argument("--duplicate", type=float, default=0.0)
    parser.add_argument("--reorder", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--players", type=int, default=None, help="players listed by `players`")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
