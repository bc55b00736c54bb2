"""The fake Arma 3's client mode (a headless client) and the fake server's side of it.

Behaves as shared/reference/steamcmd-workshop-and-headless.md §7 documents:

* launched as the server's executable with `-client`; the address as `-connect=<ip>`,
  `-connect=<ip>:<port>` or `-ip=<ip>`, the game port as `-port=`; options may also come
  from a `-par=<file>` (plain text, one option per line, `//` comments; BI wiki);
* prints the usual header (with its command line) and `Dedicated client created.`, and
  nothing more while it cannot connect (node-arma-server #21);
* the server admits it only with the server's `password` and from an address listed in
  `headlessClients[]` of server.cfg; it takes a player slot (`maxPlayers`); the server
  logs `Player <name> connecting.` / `connected` / `disconnected.` like for any player,
  appends `connected|disconnected <name> <pid> <mods>` to `headless.log` in its cwd, and
  lists connected HCs in `fake.state` under `headless`;
* once connected, an HC that loses its server (shutdown, crash, restart) logs it and
  **never reconnects by itself** (LinuxGSM #876): it keeps running, useless, until it is
  stopped. SIGTERM makes it say goodbye to the server and exit 0.

The wire between them is ours (JSON datagrams on the game port), not Arma's.
Knob (`fake_arma3.json` in the cwd): `hc_orphan_exit`, seconds a disconnected HC lingers
before exiting on its own (default 600: a leak guard for tests, far beyond any test).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.games.arma3_config import ConfigClass

__all__ = ["HeadlessRegistry", "read_par", "run_client"]

PING_EVERY = 0.3
LOST_AFTER = 5.0
"""Seconds without an answer before either side calls the other gone (busy hosts stall)."""


def read_par(path: Path) -> list[str]:
    """The options of a plain-text par file: one per line, blank and `//` lines skipped."""
    options = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text and not text.startswith("//"):
            options.append(text)
    return options


def _send(transport: asyncio.DatagramTransport, message: dict[str, Any], addr: Any) -> None:
    transport.sendto(json.dumps(message).encode(), addr)


# --- the server's side -------------------------------------------------------------------


@dataclass
class _Headless:
    name: str
    pid: int
    mods: list[str]
    ip: str
    port: int
    seen: float = field(default_factory=time.monotonic)


class HeadlessRegistry(asyncio.DatagramProtocol):
    """The fake server's game port: admits headless clients and keeps track of them."""

    def __init__(self, config: ConfigClass, log: Callable[[str], None], cwd: Path) -> None:
        password = config.get("password")
        self.password = None if password is None else str(password)
        allowed = config.get("headlessClients")
        self.allowed = [str(a) for a in allowed] if isinstance(allowed, list) else []
        most = config.get("maxPlayers")
        self.max_players = most if isinstance(most, int) else 64
        self.log = log
        self.record = cwd / "headless.log"
        self.connected: dict[tuple[str, int], _Headless] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self._reaper: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython 3.11's selector datagram transport does not subclass DatagramTransport
        self.transport = transport  # type: ignore[assignment]
        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = json.loads(data)
            kind = message["t"]
        except (ValueError, KeyError, TypeError):
            return  # a stray datagram (a port scan): ignored, like the real server
        hc = self.connected.get(addr)
        if kind == "hc-hello":
            self._hello(message, addr)
        elif kind == "hc-ping" and hc is not None:
            hc.seen = time.monotonic()
            self._reply({"t": "hc-pong"}, addr)
        elif kind == "hc-bye" and hc is not None:
            self._drop(addr)

    def _reply(self, message: dict[str, Any], addr: tuple[str, int]) -> None:
        if self.transport is not None:
            _send(self.transport, message, addr)

    def _hello(self, message: dict[str, Any], addr: tuple[str, int]) -> None:
        if addr in self.connected:
            self._reply({"t": "hc-welcome"}, addr)
            return
        name = str(message.get("name") or "headless")
        why = None
        if self.password is not None and message.get("password") != self.password:
            why = "wrong password"
        elif addr[0] not in self.allowed:
            why = f"{addr[0]} is not in headlessClients[]"
        elif len(self.connected) >= self.max_players:
            why = "server full"
        if why is not None:
            self.log(f"Player {name} refused: {why}")
            self._reply({"t": "hc-refused", "why": why}, addr)
            return
        mods = [str(m) for m in message.get("mods") or []]
        hc = _Headless(name, int(message.get("pid") or 0), mods, addr[0], addr[1])
        self.connected[addr] = hc
        self.log(f"Player {name} connecting.")
        self.log(f"Player {name} connected (headless client, {addr[0]}:{addr[1]}).")
        self._write("connected", hc)
        self._reply({"t": "hc-welcome"}, addr)

    def _drop(self, addr: tuple[str, int]) -> None:
        hc = self.connected.pop(addr, None)
        if hc is not None:
            self.log(f"Player {hc.name} disconnected.")
            self._write("disconnected", hc)

    def _write(self, what: str, hc: _Headless) -> None:
        with self.record.open("a", encoding="utf-8") as out:
            out.write(f"{what}\t{hc.name}\t{hc.pid}\t{';'.join(hc.mods)}\n")

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for addr, hc in list(self.connected.items()):
                if now - hc.seen > LOST_AFTER:
                    self._drop(addr)

    def shutdown(self) -> None:
        """The server stops: every HC is told, and logged as gone."""
        if self._reaper is not None:
            self._reaper.cancel()
        for addr in list(self.connected):
            self._reply({"t": "hc-bye"}, addr)
            self._drop(addr)

    def state(self) -> list[dict[str, Any]]:
        return [asdict(hc) | {"seen": None} for hc in self.connected.values()]


# --- the client --------------------------------------------------------------------------


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        with contextlib.suppress(ValueError):
            self.inbox.put_nowait(json.loads(data))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP "port unreachable" while the server is not up: keep trying


def _options(argv: Sequence[str]) -> dict[str, str]:
    from tests.fakes.arma3_server import parse_launch_args

    args = parse_launch_args(argv)
    if args.get("par"):
        for name, value in parse_launch_args(read_par(Path(args["par"]))).items():
            args.setdefault(name, value)
    return args


def _target(args: dict[str, str]) -> tuple[str, int]:
    host = args.get("connect") or args.get("ip") or "127.0.0.1"
    port = int(args.get("port") or 2302)
    if ":" in host:
        host, _, text = host.partition(":")
        port = int(text)
    return host, port


def _header(exe: Path, argv: Sequence[str]) -> None:
    shown = " ".join(f'"{a}"' if " " in a else a for a in argv)
    print("=" * 69)
    print(f'== "{exe}" {shown}')
    print("=" * 69)


def _say(text: str) -> None:
    print(time.strftime("%H:%M:%S ") + text, flush=True)


async def run_client(exe: Path, argv: Sequence[str]) -> int:
    """Connect to the server, stay connected, and never reconnect once it is gone."""
    _header(exe, argv)
    args = _options(argv)
    knobs_path = Path.cwd() / "fake_arma3.json"
    knobs = json.loads(knobs_path.read_text()) if knobs_path.exists() else {}
    name = args.get("name") or "headless"
    target = _target(args)
    _say("Dedicated client created.")
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    transport, client = await loop.create_datagram_endpoint(_Client, remote_addr=target)
    hello = {
        "t": "hc-hello",
        "name": name,
        "password": args.get("password"),
        "mods": [m for m in (args.get("mod") or "").split(";") if m],
        "pid": os.getpid(),
    }
    life = asyncio.ensure_future(
        _life(transport, client, hello, name, float(knobs.get("hc_orphan_exit", 600)))
    )
    await asyncio.wait({stop, life}, return_when=asyncio.FIRST_COMPLETED)
    if stop.done():
        _send(transport, {"t": "hc-bye", "name": name}, None)
        _say("Client stopped.")
    life.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await life
    transport.close()
    return 0


async def _life(
    transport: asyncio.DatagramTransport,
    client: _Client,
    hello: dict[str, Any],
    name: str,
    orphan_exit: float,
) -> None:
    while True:  # silent until admitted, like the real one
        _send(transport, hello, None)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                answer = await client.inbox.get()
                if answer.get("t") == "hc-welcome":
                    break
                await asyncio.sleep(1.5)  # refused: try again later, still silently
    host, port = transport.get_extra_info("peername")
    _say(f"Connected to {host}:{port} as {name}.")
    heard = time.monotonic()
    while time.monotonic() - heard < LOST_AFTER:
        _send(transport, {"t": "hc-ping", "name": name}, None)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PING_EVERY):
                answer = await client.inbox.get()
                if answer.get("t") == "hc-bye":
                    break
                heard = time.monotonic()
                await asyncio.sleep(PING_EVERY)
    _say("Connection to the server lost.")
    await asyncio.sleep(orphan_exit)  # and never reconnects (LinuxGSM #876)


def main(exe: Path, argv: Sequence[str]) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    return asyncio.run(run_client(exe, argv))
