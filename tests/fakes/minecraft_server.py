"""A fake Minecraft server: a real process that behaves like vanilla wherever Languard looks.

It reads `server.properties` with its own Java-faithful reader (not core's), listens on
`server-port`, writes every log line to stdout AND `logs/latest.log` in the vanilla format
(`[12:34:56] [Server thread/INFO]: ...`), rolling a previous `latest.log` into
`logs/YYYY-MM-DD-N.log.gz` at start like log4j, prints `Done (0.123s)! For help, type "help"`,
and reads console commands on stdin: `list`, `kick`, `ban`, `ban-ip`, `pardon`, `pardon-ip`,
`banlist`, `say`, `stop`, `help`, `save-off`, `save-on`, `save-all [flush]`. Bans live in
`banned-players.json` / `banned-ips.json` in vanilla's format. With `enable-rcon=true` and a
password it serves Source RCON on `rcon.port` (tests/fakes/source_server.py, Minecraft
flavour), where replies lose their newlines and the outcome of kick/ban/pardon is logged as
`[Rcon: ...]`, as in vanilla.

Test-only console commands: `fake.join <name> [ip]` (a banned name or IP is refused with the
real "You are banned" disconnect), `fake.leave <name>`, `fake.chat <name> <text>`,
`fake.hang` (stop answering the console and RCON, stay alive), `fake.crash <code>`,
`fake.world <seconds>` (keep rewriting the world's files while saving is on).
Flags: `--fake-ready-after S`, `--fake-old-list` (the pre-1.13 `list` form). Anything else
on the command line (`-jar server.jar nogui`) is ignored.

Tests run it through `write_java(folder)`, an executable named `java`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path

from tests.fakes.source_server import FakeSourceServer

__all__ = ["FakeMinecraft", "main", "offline_uuid", "read_properties", "write_java"]

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"[A-Za-z0-9_]{1,16}")
IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)")


def write_java(directory: Path) -> Path:
    """An executable `java` in `directory` that runs this fake (with the repo on sys.path)."""
    if " " in sys.executable or len(sys.executable) > 200:
        raise RuntimeError("the Python path cannot go into a shebang line")
    path = directory / "java"
    path.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.fakes.minecraft_server import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    path.chmod(0o755)
    return path


def read_properties(text: str) -> dict[str, str]:
    """java.util.Properties.load, ported line by line (LineReader + loadConvert)."""
    result: dict[str, str] = {}
    pos = 0
    while True:
        line, pos = _read_line(text, pos)
        if line is None:
            return result
        key_len, value_start, has_sep, backslash = 0, len(line), False, False
        while key_len < len(line):
            c = line[key_len]
            if c in "=:" and not backslash:
                value_start, has_sep = key_len + 1, True
                break
            if c in " \t\f" and not backslash:
                value_start = key_len + 1
                break
            backslash = (not backslash) if c == "\\" else False
            key_len += 1
        while value_start < len(line):
            c = line[value_start]
            if c not in " \t\f":
                if not has_sep and c in "=:":
                    has_sep = True
                else:
                    break
            value_start += 1
        result[_load_convert(line[:key_len])] = _load_convert(line[value_start:])


def _read_line(text: str, pos: int) -> tuple[str | None, int]:
    buf: list[str] = []
    skip_white, comment, new_line, appended, backslash, skip_lf = (
        True,
        False,
        True,
        False,
        False,
        False,
    )
    while pos < len(text):
        c = text[pos]
        pos += 1
        if skip_lf:
            skip_lf = False
            if c == "\n":
                continue
        if skip_white:
            if c in " \t\f":
                continue
            if not appended and c in "\r\n":
                continue
            skip_white, appended = False, False
        if new_line:
            new_line = False
            if c in "#!":
                comment = True
                continue
        if c not in "\n\r":
            buf.append(c)
            backslash = (not backslash) if c == "\\" else False
            continue
        if comment or not buf:
            comment, new_line, skip_white, buf = False, True, True, []
            continue
        if backslash:
            buf.pop()
            skip_white, appended, backslash = True, True, False
            if c == "\r":
                skip_lf = True
            continue
        return "".join(buf), pos
    if not buf or comment:
        return None, pos
    if backslash:
        buf.pop()
    return "".join(buf), pos


def _load_convert(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        if c != "\\":
            out.append(c)
            continue
        c = text[i]
        i += 1
        if c == "u":
            digits = text[i : i + 4]
            if len(digits) != 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("Malformed \\uxxxx encoding.")
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append({"t": "\t", "r": "\r", "n": "\n", "f": "\f"}.get(c, c))
    # Java builds UTF-16 strings: pairs of \u surrogates make one character.
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")


def offline_uuid(name: str) -> str:
    digest = hashlib.md5(b"OfflinePlayer:" + name.encode(), usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest, version=3))


def _stamp(seconds: float | None = None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(seconds))


class FakeMinecraft:
    def __init__(self, folder: Path, args: argparse.Namespace) -> None:
        self.folder = folder
        self.args = args
        raw = (folder / "server.properties").read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        self.props = read_properties(text)
        self.port = int(self.props.get("server-port", "25565") or 25565)
        self.max_players = int(self.props.get("max-players", "20") or 20)
        self.players: dict[str, str] = {}
        self.entity = 100
        self.hung = False
        self.stopped = asyncio.Event()
        self.exit_code = 0
        self.rcon: FakeSourceServer | None = None
        self.listener: socket.socket | None = None
        self._stdin = b""
        self.autosave = True
        self.world_ticks = 0
        self._world_task: asyncio.Task[None] | None = None
        self.banned_players = self._load("banned-players.json")
        self.banned_ips = self._load("banned-ips.json")
        self.latest = self._open_latest()

    # -- files and logging -----------------------------------------------------------------

    def _open_latest(self) -> int:
        logs = self.folder / "logs"
        logs.mkdir(exist_ok=True)
        latest = logs / "latest.log"
        if latest.exists() and latest.stat().st_size:
            day = time.strftime("%Y-%m-%d", time.localtime(latest.stat().st_mtime))
            n = 1
            while (logs / f"{day}-{n}.log.gz").exists():
                n += 1
            with latest.open("rb") as src, gzip.open(logs / f"{day}-{n}.log.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            latest.unlink()
        return os.open(latest, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _load(self, name: str) -> list[dict[str, str]]:
        try:
            entries = json.loads((self.folder / name).read_text() or "[]")
        except FileNotFoundError:
            return []
        return [e for e in entries if isinstance(e, dict)]

    def _save(self) -> None:
        for name, entries in (
            ("banned-players.json", self.banned_players),
            ("banned-ips.json", self.banned_ips),
        ):
            tmp = self.folder / f".{name}.tmp"
            tmp.write_text(json.dumps(entries, indent=2))
            os.replace(tmp, self.folder / name)

    def log(self, message: str, thread: str = "Server thread", level: str = "INFO") -> None:
        data = f"[{time.strftime('%H:%M:%S')}] [{thread}/{level}]: {message}\n".encode()
        os.write(1, data)
        os.write(self.latest, data)

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> int:
        self.log("Starting minecraft server version 1.20.4")
        self.log("Loading properties")
        self.log("Default game type: SURVIVAL")
        host = self.props.get("server-ip") or "127.0.0.1"
        self.log(f"Starting Minecraft server on {host or '*'}:{self.port}")
        try:
            self.listener = socket.create_server((host, self.port))
        except OSError as exc:
            self.log("**** FAILED TO BIND TO PORT!", level="WARN")
            self.log(f"The exception was: {exc}", level="WARN")
            return 1
        self.log('Preparing level "world"')
        started = time.monotonic()
        await asyncio.sleep(self.args.fake_ready_after)
        self.log(f'Done ({time.monotonic() - started:.3f}s)! For help, type "help"')
        password = self.props.get("rcon.password", "")
        if self.props.get("enable-rcon") == "true" and password:
            rcon_port = int(self.props.get("rcon.port", "25575") or 25575)
            self.log("Starting remote control listener")
            self.rcon = FakeSourceServer(
                password, port=rcon_port, host="127.0.0.1", handler=self.rcon_command
            )
            await self.rcon.start()
            self.log("Thread RCON Listener started")
            self.log(f"RCON running on 0.0.0.0:{rcon_port}")
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError, ValueError):
            os.set_blocking(0, False)
            loop.add_reader(0, self._read_stdin)
        await self.stopped.wait()
        with contextlib.suppress(OSError, ValueError):
            loop.remove_reader(0)
        if self.rcon is not None:
            await self.rcon.stop()
        self.listener.close()
        return self.exit_code

    def _read_stdin(self) -> None:
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            return
        if not data:
            asyncio.get_running_loop().remove_reader(0)
            return
        self._stdin += data
        while b"\n" in self._stdin:
            raw, self._stdin = self._stdin.split(b"\n", 1)
            if self.hung:
                continue
            for message in self.handle(raw.decode("utf-8", "replace").strip(), "Server"):
                self.log(message)

    def rcon_command(self, command: str) -> str:
        return "".join(self.handle(command, "Rcon"))  # vanilla drops the newlines (MC-7569)

    def hang(self) -> None:
        self.hung = True
        with contextlib.suppress(OSError, ValueError):
            asyncio.get_running_loop().remove_reader(0)
        if self.rcon is not None:
            self.rcon.delay = 3600.0

    def shut_down(self, code: int = 0) -> None:
        self.log("Stopping server")
        self.log("Saving players")
        for name in list(self.players):
            self.disconnect(name, "Server closed")
        self.log("Saving worlds")
        self.log("ThreadedAnvilChunkStorage (world): All chunks are saved")
        self.exit_code = code
        self.stopped.set()

    # -- players ---------------------------------------------------------------------------

    def online(self, name: str) -> str | None:
        return next((n for n in self.players if n.lower() == name.lower()), None)

    def disconnect(self, name: str, reason: str, *, later: bool = False) -> None:
        """Drop a player; `later` logs it after the command's reply, as vanilla's next tick."""
        self.players.pop(name, None)
        lines = (f"{name} lost connection: {reason}", f"{name} left the game")
        if later:
            asyncio.get_running_loop().call_soon(lambda: [self.log(line) for line in lines])
        else:
            for line in lines:
                self.log(line)

    def _active(self, entries: list[dict[str, str]]) -> list[dict[str, str]]:
        now = _stamp()
        return [
            e
            for e in entries
            if e.get("expires", "forever") in ("forever", "") or str(e.get("expires")) > now
        ]

    def player_ban(self, name: str) -> dict[str, str] | None:
        return next(
            (
                e
                for e in self._active(self.banned_players)
                if str(e.get("name", "")).lower() == name.lower()
                or str(e.get("uuid", "")).lower() == offline_uuid(name)
            ),
            None,
        )

    def ip_ban(self, ip: str) -> dict[str, str] | None:
        return next((e for e in self._active(self.banned_ips) if e.get("ip") == ip), None)

    def join(self, name: str, ip: str) -> None:
        if not NAME.fullmatch(name):
            return
        port = 40000 + self.entity
        self.log(f"UUID of player {name} is {offline_uuid(name)}", thread="User Authenticator #1")
        ban = self.player_ban(name)
        ip_ban = self.ip_ban(ip)
        if ban is not None or ip_ban is not None:
            why = "You are banned" if ban is not None else "Your IP address is banned"
            reason = (ban or ip_ban or {}).get("reason", "")
            self.log(
                f"{name} (/{ip}:{port}) lost connection: {why} from this server.\nReason: {reason}"
            )
            return
        if len(self.players) >= self.max_players:
            self.log(f"{name} (/{ip}:{port}) lost connection: The server is full!")
            return
        self.entity += 1
        self.players[name] = ip
        self.log(f"{name}[/{ip}:{port}] logged in with entity id {self.entity} at (0.5, 64.0, 0.5)")
        self.log(f"{name} joined the game")

    # -- commands --------------------------------------------------------------------------

    def handle(self, line: str, source: str) -> list[str]:
        """Run one command; returns the reply messages (the console logs them)."""
        command, _, rest = line.partition(" ")
        rest = rest.strip()
        handler = getattr(self, "cmd_" + command.replace("-", "_").replace(".", "_"), None)
        if not command or handler is None:
            return ["Unknown or incomplete command, see below for error", f"{line}<--[HERE]"]
        result: list[str] = handler(rest, source)
        return result

    def _admin(self, source: str, message: str) -> list[str]:
        """A command's success: the reply, logged as `[Rcon: ...]` when it came over RCON."""
        if source != "Server":
            self.log(f"[{source}: {message}]")
        return [message]

    def cmd_list(self, rest: str, source: str) -> list[str]:
        names = ", ".join(self.players)
        count, most = len(self.players), self.max_players
        if self.args.fake_old_list:
            return [f"There are {count}/{most} players online:"] + ([names] if names else [])
        return [f"There are {count} of a max of {most} players online: {names}"]

    def cmd_kick(self, rest: str, source: str) -> list[str]:
        target, _, reason = rest.partition(" ")
        name = self.online(target)
        if name is None:
            return ["No player was found"]
        reason = reason.strip() or "Kicked by an operator"
        reply = self._admin(source, f"Kicked {name}: {reason}")
        self.disconnect(name, reason, later=True)
        return reply

    def cmd_ban(self, rest: str, source: str) -> list[str]:
        target, _, reason = rest.partition(" ")
        if not NAME.fullmatch(target):
            return ["That player does not exist"]
        if self.player_ban(target) is not None:
            return ["Nothing changed. The player is already banned"]
        reason = reason.strip() or "Banned by an operator."
        name = self.online(target) or target
        self.banned_players.append(
            {
                "uuid": offline_uuid(name),
                "name": name,
                "created": _stamp(),
                "source": source,
                "expires": "forever",
                "reason": reason,
            }
        )
        self._save()
        reply = self._admin(source, f"Banned {name}: {reason}")
        if name in self.players:
            self.disconnect(name, "You are banned from this server.", later=True)
        return reply

    def cmd_ban_ip(self, rest: str, source: str) -> list[str]:
        target, _, reason = rest.partition(" ")
        ip = target if IPV4.fullmatch(target) else self.players.get(self.online(target) or "")
        if ip is None:
            return ["Invalid IP address or unknown player"]
        if self.ip_ban(ip) is not None:
            return ["Nothing changed. That IP is already banned"]
        reason = reason.strip() or "Banned by an operator."
        self.banned_ips.append(
            {
                "ip": ip,
                "created": _stamp(),
                "source": source,
                "expires": "forever",
                "reason": reason,
            }
        )
        self._save()
        reply = self._admin(source, f"Banned IP {ip}: {reason}")
        for name, address in list(self.players.items()):
            if address == ip:
                self.disconnect(name, "You have been IP banned from this server.", later=True)
        return reply

    def cmd_pardon(self, rest: str, source: str) -> list[str]:
        ban = self.player_ban(rest) if NAME.fullmatch(rest) else None
        if ban is None:
            return ["Nothing changed. The player isn't banned"]
        self.banned_players.remove(ban)
        self._save()
        return self._admin(source, f"Unbanned {ban['name']}")

    def cmd_pardon_ip(self, rest: str, source: str) -> list[str]:
        if not IPV4.fullmatch(rest):
            return ["Invalid IP address"]
        ban = self.ip_ban(rest)
        if ban is None:
            return ["Nothing changed. That IP isn't banned"]
        self.banned_ips.remove(ban)
        self._save()
        return self._admin(source, f"Unbanned IP {rest}")

    def cmd_banlist(self, rest: str, source: str) -> list[str]:
        entries: list[tuple[str, dict[str, str]]] = []
        if rest in ("", "players"):
            entries += [(str(e.get("name")), e) for e in self._active(self.banned_players)]
        if rest in ("", "ips"):
            entries += [(str(e.get("ip")), e) for e in self._active(self.banned_ips)]
        if rest not in ("", "players", "ips"):
            return ["Incorrect argument for command", f"banlist {rest}<--[HERE]"]
        if not entries:
            return ["There are no bans"]
        return [f"There are {len(entries)} ban(s):"] + [
            f"{target} was banned by {e.get('source', 'Server')}: {e.get('reason', '')}"
            for target, e in entries
        ]

    def cmd_say(self, rest: str, source: str) -> list[str]:
        if not rest:
            return ["Unknown or incomplete command, see below for error", "say<--[HERE]"]
        if source == "Server":
            return [f"[Server] {rest}"]
        self.log(f"[{source}] {rest}")
        return []

    def cmd_help(self, rest: str, source: str) -> list[str]:
        return [
            "/ban <targets> [<reason>]",
            "/ban-ip <target> [<reason>]",
            "/banlist [ips|players]",
            "/kick <targets> [<reason>]",
            "/list [uuids]",
            "/pardon <targets>",
            "/pardon-ip <target>",
            "/say <message>",
            "/stop",
        ]

    def cmd_stop(self, rest: str, source: str) -> list[str]:
        asyncio.get_running_loop().call_soon(self.shut_down)
        return self._admin(source, "Stopping the server")

    def cmd_fake_join(self, rest: str, source: str) -> list[str]:
        name, _, ip = rest.partition(" ")
        self.join(name, ip.strip() or "127.0.0.1")
        return []

    def cmd_fake_leave(self, rest: str, source: str) -> list[str]:
        name = self.online(rest)
        if name is not None:
            self.disconnect(name, "Disconnected")
        return []

    def cmd_fake_chat(self, rest: str, source: str) -> list[str]:
        target, _, text = rest.partition(" ")
        name = self.online(target)
        if name is not None:
            self.log(f"<{name}> {text}")
        return []

    def cmd_fake_hang(self, rest: str, source: str) -> list[str]:
        self.hang()
        return []

    def cmd_fake_crash(self, rest: str, source: str) -> list[str]:
        self.log("Encountered an unexpected exception", level="ERROR")
        os._exit(int(rest) if rest.isdigit() else 1)

    # -- the world (`fake.world <seconds>` keeps writing it while saving is on) -----------

    async def write_world(self) -> None:
        """One save: level.dat then a region file, each rewritten in place in two halves,
        both stamped with the same tick (a consistent copy has equal ticks everywhere)."""
        self.world_ticks += 1
        tick = self.world_ticks
        world = self.folder / (self.props.get("level-name") or "world")
        for rel, size in (("level.dat", 3000), ("region/r.0.0.mca", 60000)):
            path = world / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            body = f"tick={tick}\n".encode() + b"w" * size + f"\nend={tick}\n".encode()
            with path.open("wb") as out:
                out.write(body[: len(body) // 2])
                out.flush()
                await asyncio.sleep(0.002)
                out.write(body[len(body) // 2 :])

    async def _autosave(self, every: float) -> None:
        while True:
            if self.autosave:
                await self.write_world()
            await asyncio.sleep(every)

    def cmd_fake_world(self, rest: str, source: str) -> list[str]:
        if self._world_task is None:
            every = float(rest) if rest else 0.01
            self._world_task = asyncio.get_running_loop().create_task(self._autosave(every))
        return []

    def cmd_save_off(self, rest: str, source: str) -> list[str]:
        if not self.autosave:
            return ["Saving is already turned off"]
        self.autosave = False
        return self._admin(source, "Automatic saving is now disabled")

    def cmd_save_on(self, rest: str, source: str) -> list[str]:
        if self.autosave:
            return ["Saving is already turned on"]
        self.autosave = True
        return self._admin(source, "Automatic saving is now enabled")

    def cmd_save_all(self, rest: str, source: str) -> list[str]:
        """Vanilla answers at once, then logs `Saved the game` once the (slow) flush is
        done: later here than the console link's quiet time, as with a big world."""

        async def flush() -> None:
            await asyncio.sleep(0.6)
            await self.write_world()
            self.log("Saved the game")

        asyncio.get_running_loop().create_task(flush())
        return ["Saving the game (this may take a moment!)"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fake Minecraft server", add_help=False)
    parser.add_argument("--fake-ready-after", type=float, default=0.1)
    parser.add_argument("--fake-old-list", action="store_true")
    args, _ignored = parser.parse_known_args(argv)
    server = FakeMinecraft(Path.cwd(), args)
    return asyncio.run(server.run())


if __name__ == "__main__":
    sys.exit(main())
