"""A fake Source RCON server on loopback that behaves like the real ones, not like our client.

It frames packets with its own `struct` code (not `core.rcon.source`), so a codec bug is not
mirrored on both ends. Two flavours:

* "minecraft": like vanilla's RconClient, one `read()` of at most 1460 bytes must hold
  exactly one packet or the connection is closed; the body is read up to the first NUL;
  a login is answered with AUTH_RESPONSE only (id -1 on failure); replies go out in chunks
  of 4096 characters; any other packet type gets `Unknown request <hex type>`.
* "source": a proper stream reader; a login is answered with an empty RESPONSE_VALUE then
  AUTH_RESPONSE; replies are cut every 4096 *bytes* (possibly mid-character); an empty
  RESPONSE_VALUE is mirrored, followed by a packet whose body is `00 00 00 01`.

Embed it (`async with FakeSourceServer("pw") as server: server.port`) or run it:
`python -m tests.fakes.source_server --port 0 --password pw` prints the port, stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import struct
from collections.abc import Callable
from types import TracebackType
from typing import Literal

__all__ = ["FakeSourceServer", "Flavour", "Handler", "long_text"]

_log = logging.getLogger(__name__)

Flavour = Literal["minecraft", "source"]
Handler = Callable[[str], str]

AUTH, AUTH_RESPONSE, EXECCOMMAND, RESPONSE_VALUE = 3, 2, 2, 0
_HEADER = struct.Struct("<iii")
MINECRAFT_READ = 1460
SOURCE_MAX_SIZE = 4096 + 10
CHUNK = 4096


def long_text(chars: int = 10_000) -> str:
    """Deterministic text with 3-byte characters, so byte-wise splits land mid-character."""
    lines: list[str] = []
    total = 0
    index = 0
    while total < chars:
        line = f"line {index:05d} €€€€\n"  # 16 characters, 24 bytes
        lines.append(line)
        total += len(line)
        index += 1
    return "".join(lines)[:chars]


def _encode(packet_id: int, packet_type: int, body: bytes) -> bytes:
    return _HEADER.pack(len(body) + 10, packet_id, packet_type) + body + b"\0\0"


class FakeSourceServer:
    """An RCON server with knobs: `delay`, `drop_on`, `garbage_on`, `answer_logins`, drops.

    Hostile knobs: `flood_on` answers that command with an endless reply (packets of the
    command's id, never a terminator's answer), `oversize_on` with a header declaring a 1 GiB
    packet followed by endless bytes; both stop after `flood_bytes` or when the peer leaves,
    and `flooded` counts what they sent.
    """

    def __init__(
        self,
        password: str = "secret",
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        flavour: Flavour = "minecraft",
        handler: Handler | None = None,
        delay: float = 0.0,
    ) -> None:
        self.password = password
        self.host = host
        self.port = port
        self.flavour: Flavour = flavour
        self.handler: Handler = handler or self.default_handler
        self.delay = delay
        self.drop_on: str | None = None  # close the connection instead of answering this
        self.garbage_on: str | None = None  # answer this with bytes that are not RCON
        self.answer_logins = True  # False: read logins, never answer (a hung server)
        self.flood_on: str | None = None
        self.oversize_on: str | None = None
        self.flood_bytes = 256 << 20
        self.flooded = 0
        self.commands: list[str] = []
        self.said: list[str] = []
        self.reply_packets: list[int] = []
        self.logins = 0
        self.refused_logins = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FakeSourceServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen on `port` (0 picks one; later starts reuse the one bound first)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every connection, like a server process exiting."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        await self.drop_connections()
        await server.wait_closed()

    async def restart(self) -> None:
        """Stop, then listen again on the same port (clients see a refused or reset connection)."""
        await self.stop()
        await self.start()

    async def drop_connections(self) -> None:
        """Reset every open connection (the server keeps listening)."""
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    def default_handler(self, command: str) -> str:
        """`list`, `say <text>`, `echo <text>`, `long [chars]`; anything else is unknown."""
        name, _, rest = command.partition(" ")
        if name == "list":
            return "There are 2 of a max of 20 players online: Alice, Bob"
        if name == "say":
            self.said.append(rest)
            return ""
        if name == "echo":
            return rest
        if name == "long":
            return long_text(int(rest) if rest.isdigit() else 10_000)
        return f"Unknown or incomplete command, see below for error\n{command}<--[HERE]"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            if self._server is None:  # accepted just as stop() ran
                return
            if self.flavour == "minecraft":
                await self._serve_minecraft(reader, writer)
            else:
                await self._serve_source(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Cancelled by stop()/drop_connections(). End quietly: on 3.11 asyncio's stream
            # callback reports a cancelled handler task as an error.
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()

    async def _serve_minecraft(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        authed = False
        while True:
            data = await reader.read(MINECRAFT_READ)
            if len(data) < 10:
                return
            (size,) = struct.unpack_from("<i", data)
            if size != len(data) - 4:
                _log.debug(
                    "minecraft fake: read held %d bytes for a %d-byte packet", len(data), size
                )
                return
            packet_id, packet_type = struct.unpack_from("<ii", data, 4)
            body = data[12:].split(b"\0", 1)[0].decode("utf-8", errors="replace")
            if packet_type == AUTH:
                authed = bool(body) and body == self.password
                await self._login_result(writer, packet_id, authed)
            elif packet_type == EXECCOMMAND:
                if not authed:
                    await self._send(writer, -1, AUTH_RESPONSE, b"")
                elif not await self._run(writer, packet_id, body):
                    return
            else:
                reply = f"Unknown request {packet_type & 0xFFFFFFFF:x}".encode()
                await self._send(writer, packet_id, RESPONSE_VALUE, reply)

    async def _serve_source(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        authed = False
        while True:
            (size,) = struct.unpack("<i", await reader.readexactly(4))
            if not 10 <= size <= SOURCE_MAX_SIZE:
                return
            rest = await reader.readexactly(size)
            packet_id, packet_type = struct.unpack_from("<ii", rest)
            body = rest[8:-2].decode("utf-8", errors="replace")
            if packet_type == AUTH:
                if self.answer_logins:
                    await self._send(writer, packet_id, RESPONSE_VALUE, b"")
                authed = body == self.password
                await self._login_result(writer, packet_id, authed)
            elif not authed:
                await self._send(writer, -1, AUTH_RESPONSE, b"")
            elif packet_type == EXECCOMMAND:
                if not await self._run(writer, packet_id, body):
                    return
            elif packet_type == RESPONSE_VALUE:
                await self._send(writer, packet_id, RESPONSE_VALUE, b"")
                await self._send(writer, packet_id, RESPONSE_VALUE, b"\x00\x00\x00\x01")

    async def _login_result(self, writer: asyncio.StreamWriter, packet_id: int, ok: bool) -> None:
        if not self.answer_logins:
            return
        if ok:
            self.logins += 1
        else:
            self.refused_logins += 1
        await self._send(writer, packet_id if ok else -1, AUTH_RESPONSE, b"")

    async def _run(self, writer: asyncio.StreamWriter, packet_id: int, command: str) -> bool:
        """Answer one command; False when the connection was dropped on purpose."""
        self.commands.append(command)
        if self.drop_on is not None and command == self.drop_on:
            writer.transport.abort()
            return False
        if self.garbage_on is not None and command == self.garbage_on:
            await self._send(writer, packet_id, RESPONSE_VALUE, b"")
            writer.write(b"\xff" * 16)
            return True
        if command in (self.flood_on, self.oversize_on):
            await self._flood(writer, packet_id, oversize=command == self.oversize_on)
            return False
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            reply = self.handler(command)
        except Exception as exc:
            reply = f"Error executing: {command} ({exc})"
        if self.flavour == "minecraft":
            pieces = [reply[i : i + CHUNK] for i in range(0, len(reply), CHUNK)] or [""]
            chunks = [piece.encode() for piece in pieces]
        else:
            data = reply.encode()
            chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
        self.reply_packets.append(len(chunks))
        for chunk in chunks:
            await self._send(writer, packet_id, RESPONSE_VALUE, chunk)
        return True

    async def _flood(self, writer: asyncio.StreamWriter, packet_id: int, oversize: bool) -> None:
        """Send until the peer hangs up (a ConnectionError ends the session) or the budget
        is spent; `drain()` paces it to what the client reads."""
        if oversize:
            writer.write(_HEADER.pack(1 << 30, packet_id, RESPONSE_VALUE))
        chunk = _encode(packet_id, RESPONSE_VALUE, b"x" * CHUNK)
        while self.flooded < self.flood_bytes:
            writer.write(chunk)
            self.flooded += len(chunk)
            await writer.drain()

    async def _send(
        self, writer: asyncio.StreamWriter, packet_id: int, packet_type: int, body: bytes
    ) -> None:
        writer.write(_encode(packet_id, packet_type, body))
        await writer.drain()


async def _main(args: argparse.Namespace) -> None:
    server = FakeSourceServer(args.password, port=args.port, flavour=args.flavour, delay=args.delay)
    await server.start()
    print(server.port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Source RCON server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--password", default="secret")
    parser.add_argument("--flavour", choices=["minecraft", "source"], default="minecraft")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
