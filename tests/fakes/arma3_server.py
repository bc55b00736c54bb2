"""A fake Arma 3 dedicated server: a real process that Languard can manage like the real one.

It takes the real launch arguments (`-port= -config= -cfg= -profiles= -name= -bepath= -mod=`),
reads server.cfg and BattlEye's cfg with Languard's config reader, binds the game port
(UDP), logs a header block then lines stamped in server.cfg's `timeStampFormat`, and runs
BattlEye RCon (the embedded `FakeBattlEyeServer`) on `RConPort`/`RConIP`.

Where the log goes: by default, like the Linux `arma3server` / `arma3server_x64`, to stdout
only, with no RPT file at all. Public sources: LinuxGSM issue 259 ("Arma 3 Server RPT Log
Missing", 2015: the log is in the console output), arma-server-web-admin issue 17 ("Using
the linux server logs aren't written", 2015) and PR 174 (2020: it writes stdout to log
files itself on Linux), pelican-eggs/yolks PR 253 (2024: "Added RPT logging": the container
entrypoint makes a timestamped log file of the server's output itself).

The knob `"windows": true` acts like a Windows build (under Wine or Proton): it writes
`<exe>_YYYY-MM-DD_HH-MM-SS.rpt` in the profile folder and repeats every line to stdout,
unless `"stdout": false` keeps stdout silent.

Like the real BattlEye it renames its cfg to `beserver_x64_active_<random>.cfg` while it
runs and leaves that file behind when it dies hard; and like the real bug, it starts no
RCon at all when such a stale file is already there. It keeps `bans.txt` (read at start,
written on every change) and appends every RCon `say` to `chat.log` in its cwd.

Test-only RCon commands: `fake.join <name> <guid> <ip>` (banned GUID/IP ⇒ kicked),
`fake.leave <slot>`, `fake.chat <slot> <channel> <text>`, `fake.hang` (RCon goes silent, the
process lives), `fake.crash <code>`, `fake.state` (JSON), `fake.flood <tag> <count>
[<seconds>]` (log lines `Flood <tag> <n>` for n = 1..count, at once or one every `seconds`),
`fake.hog <MiB>` (takes and touches that much memory, 16 MiB at a time: a container's memory
limit kills it). Knobs:
`fake_arma3.json` in the cwd (`rcon_delay`: seconds before RCon listens, default 0.3;
`windows`, `stdout`: see above; `vars_every`: seconds between rewrites of
`profiles/Users/<name>/<name>.vars.Arma3Profile`).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from core.games.arma3_config import (
    BanLine,
    ConfigClass,
    ban_target,
    parse_bans_txt,
    parse_beserver_cfg,
    render_bans_txt,
)
from core.games.arma3_config_parser import parse_config
from core.rcon.battleye_server import ServerProtocol
from tests.fakes.arma3_client import HeadlessRegistry
from tests.fakes.battleye_server import FakeBattlEyeServer

__all__ = ["FakeArma3", "main", "parse_launch_args"]

VERSION = "2.18.152302"
_SAY = re.compile(r"^RCon admin #\d+: \((.+?)\) (.*)$", re.DOTALL)


def parse_launch_args(argv: Sequence[str]) -> dict[str, str]:
    """`-name=value` (case-insensitive names) → {name: value}; bare flags map to ""."""
    args: dict[str, str] = {}
    for arg in argv:
        if arg.startswith("-"):
            name, _, value = arg[1:].partition("=")
            args[name.lower()] = value
    return args


@dataclass
class _Player:
    slot: int
    name: str
    guid: str
    ip: str
    port: int
    ping: int = 42


class _ConsoleProtocol(ServerProtocol):
    """BattlEye's protocol, also handing every console line to the game's log."""

    def __init__(self, password: str, on_line: Callable[[str], None]) -> None:
        super().__init__(password)
        self._on_line = on_line

    def broadcast(self, text: str, now: float) -> None:
        self._on_line(text)
        super().broadcast(text, now)


class FakeArma3:
    def __init__(self, exe: Path, argv: Sequence[str]) -> None:
        self.exe = exe
        self.argv = list(argv)
        self.args = parse_launch_args(argv)
        self.cwd = Path.cwd()
        knobs = self.cwd / "fake_arma3.json"
        self.knobs = json.loads(knobs.read_text()) if knobs.exists() else {}
        self.profiles = Path(self.args.get("profiles") or self.cwd)
        self.be_dir = Path(self.args.get("bepath") or self.profiles / "BattlEye")
        x64 = exe.name.endswith("_x64")
        self.be_cfg = self.be_dir / ("beserver_x64.cfg" if x64 else "beserver.cfg")
        self.active_cfg: Path | None = None
        self.stamp_format = "short"
        self.hostname = ""
        self.mission = ""
        self.difficulty = ""
        self.players: dict[int, _Player] = {}
        self.bans: list[BanLine] = []
        self.rcon: FakeBattlEyeServer | None = None
        self.stopping: asyncio.Future[str] | None = None
        self.rpt_path: Path | None = None
        self._rpt = None
        self.windows = bool(self.knobs.get("windows", False))
        self.stdout = bool(self.knobs.get("stdout", True)) or not self.windows

    # --- output ----------------------------------------------------------------------------

    def _open_rpt(self) -> None:
        self.profiles.mkdir(parents=True, exist_ok=True)
        when = time.time()
        while True:  # one file per start, named by its start time (bumped on a clash)
            name = datetime.fromtimestamp(when).strftime("%Y-%m-%d_%H-%M-%S")
            path = self.profiles / f"{self.exe.name}_{name}.rpt"
            if not path.exists():
                break
            when += 1
        self.rpt_path = path
        self._rpt = path.open("a", encoding="utf-8", buffering=1)

    def raw(self, text: str) -> None:
        if self._rpt is not None:
            self._rpt.write(text + "\n")
        if self.stdout:
            print(text, flush=True)

    def log(self, text: str) -> None:
        now = datetime.now()
        if self.stamp_format == "full":
            prefix = now.strftime("%Y/%m/%d, %H:%M:%S ")
        elif self.stamp_format == "none":
            prefix = ""
        else:
            prefix = f"{now.hour:2d}:{now.minute:02d}:{now.second:02d} "
        self.raw(prefix + text)

    def _header(self) -> None:
        shown = " ".join(f'"{a}"' if " " in a else a for a in self.argv)
        now = datetime.now().strftime("%Y/%m/%d %H:%M:%S")
        self.raw("=" * 69)
        self.raw(f"== {self.exe}")
        self.raw(f'== "{self.exe}" {shown}')
        self.raw("")
        self.raw("Original output filename: Arma3Retail_Server_x64")
        self.raw("Exe timestamp: 2024/11/12 10:11:12")
        self.raw(f"Current time:  {now}")
        self.raw("")
        self.raw("Type: Public")
        self.raw("Build: Stable")
        self.raw(f"Version: {VERSION} (fake)")
        self.raw("=" * 69)

    def _on_console_line(self, text: str) -> None:
        self.log(f"BattlEye Server: {text}")
        m = _SAY.match(text)
        if m is not None:
            with (self.cwd / "chat.log").open("a", encoding="utf-8") as chat:
                chat.write(f"{m[1]}\t{m[2]}\n")

    # --- life ------------------------------------------------------------------------------

    async def run(self) -> int:
        if self.windows:
            self._open_rpt()
        self._header()
        try:
            config = parse_config(self._read(Path(self.args["config"])))
        except (KeyError, OSError, ValueError) as exc:
            self.log(f"Cannot load the server config: {exc}")
            return 1
        self._apply_config(config)
        loop = asyncio.get_running_loop()
        self.stopping = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop, f"received {signal.Signals(sig).name}")
        port = int(self.args.get("port") or 2302)
        game, self.registry = await loop.create_datagram_endpoint(
            lambda: HeadlessRegistry(config, self.log, self.cwd), local_addr=("0.0.0.0", port)
        )
        self._mod_list()
        self.log("Dedicated host created.")
        self.log(f"Game Port: {port}, Steam Query Port: {port + 1}")
        await self._start_battleye()
        self.log("Host identity created.")
        if self.knobs.get("vars_every"):
            self._vars_task = asyncio.create_task(self._write_vars(float(self.knobs["vars_every"])))
        if self.mission:
            self._load_mission(self.mission, self.difficulty)
        else:
            self.log("Waiting for next game.")
        reason = await self.stopping
        self.log(f"Shutting down: {reason}")
        self.registry.shutdown()  # headless clients are told, then the game port closes
        if self.rcon is not None:
            await self.rcon.stop()
        game.close()
        if self.active_cfg is not None:
            self.active_cfg.unlink(missing_ok=True)
        self.log("Dedicated host shut down.")
        return 0

    def _mod_list(self) -> None:
        """The `List of mods` table of the `-mod=`/`-serverMod=` folders that exist, each
        named by its mod.cpp (the shape of public RPTs; core/mods/verify.py reads it)."""
        paths = [p for k in ("mod", "servermod") for p in self.args.get(k, "").split(";") if p]
        if not paths:
            return
        self.log("=" * 30 + " List of mods " + "=" * 30)
        self.log("modsReadOnly = true")
        self.log(f"{'name':>24} | {'modDir':>24} |  default |   origin | fullPath")
        self.log("-" * 90)
        for rel in paths:
            folder = self.cwd / rel
            if folder.is_dir():
                cpp = (folder / "mod.cpp").read_text() if (folder / "mod.cpp").is_file() else ""
                found = re.search(r'name\s*=\s*"([^"]*)"', cpp)
                name = found[1] if found else folder.name
                self.log(f"{name:>24} | {rel:>24} |    false | GAME DIR | {folder.resolve()}")
        self.log("=" * 74)

    async def _write_vars(self, every: float) -> None:
        """Knob `vars_every`: mission persistence (`saveProfileNamespace`) rewrites
        `<name>.vars.Arma3Profile` in place, in two halves, every `every` seconds."""
        name = self.args.get("name") or "server"
        path = self.profiles / "Users" / name / f"{name}.vars.Arma3Profile"
        path.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        while True:
            count += 1
            body = f"begin={count}\n".encode() + b"x" * 4000 + f"\nend={count}\n".encode()
            with path.open("wb") as out:
                out.write(body[:2000])
                out.flush()
                await asyncio.sleep(0.002)
                out.write(body[2000:])
            await asyncio.sleep(every)

    @staticmethod
    def _read(path: Path) -> str:
        return path.read_text(encoding="utf-8")

    def _apply_config(self, config: ConfigClass) -> None:
        self.hostname = str(config.get("hostname") or "")
        self.stamp_format = str(config.get("timeStampFormat") or "short").lower()
        self.log(f"Host name: {self.hostname}")
        missions = config.child("Missions")
        first = missions.classes()[0] if missions is not None and missions.classes() else None
        if first is not None:
            self.mission = str(first.get("template") or "")
            self.difficulty = str(first.get("difficulty") or "Regular")

    async def _start_battleye(self) -> None:
        stale = sorted(self.be_dir.glob("beserver*_active_*.cfg"))
        if stale:
            self.log(f"BattlEye Server: RCon disabled: stale config {stale[0].name} in use")
            return
        try:
            cfg = parse_beserver_cfg(self._read(self.be_cfg))
        except OSError:
            self.log("BattlEye Server: no config, RCon disabled")
            return
        self.active_cfg = self.be_dir / f"{self.be_cfg.stem}_active_{secrets.token_hex(4)}.cfg"
        self.be_cfg.rename(self.active_cfg)
        self._load_bans()
        self.log(f"BattlEye Server: Initialized (v1.220, Arma 3 {VERSION})")
        password = cfg.get("rconpassword", "")
        if not password:
            return
        await asyncio.sleep(float(self.knobs.get("rcon_delay", 0.3)))
        rcon = FakeBattlEyeServer(
            password,
            host=cfg.get("rconip", "0.0.0.0"),
            port=int(cfg.get("rconport", "2306")),
            handler=self._command,
        )
        rcon.proto = _ConsoleProtocol(password, self._on_console_line)
        await rcon.start()
        self.rcon = rcon
        self.log(f"BattlEye Server: RCon listening on port {rcon.port}")

    def _stop(self, reason: str) -> None:
        if self.stopping is not None and not self.stopping.done():
            self.stopping.set_result(reason)

    def _crash(self, code: int) -> None:
        self.log(f"Fake crash requested (exit code {code})")
        os._exit(code)

    def _load_mission(self, template: str, difficulty: str) -> None:
        self.mission, self.difficulty = template, difficulty or "Regular"
        self.log(f"Mission {template} read from bank.")
        self.log("Roles assigned.")
        self.log("Reading mission ...")
        self.log("Mission read.")
        self.log("Game started.")

    # --- bans ------------------------------------------------------------------------------

    def _load_bans(self) -> None:
        """Like BattlEye: lines it cannot read (junk, binary, IPv6) are ignored."""
        path = self.be_dir / "bans.txt"
        text = path.read_bytes().decode("utf-8", "replace") if path.exists() else ""
        self.bans = parse_bans_txt(text)

    def _write_bans(self) -> None:
        (self.be_dir / "bans.txt").write_text(render_bans_txt(self.bans), encoding="utf-8")

    def _ordered_bans(self) -> list[BanLine]:
        """GUID bans first, then IP bans: the one index space `removeBan` takes."""
        guids = [b for b in self.bans if "." not in b.target]
        return guids + [b for b in self.bans if "." in b.target]

    def _ban_for(self, *targets: str) -> BanLine | None:
        now = time.time()
        for ban in self.bans:
            if ban.target in targets and (ban.expires == -1 or ban.expires > now):
                return ban
        return None

    def _bans_table(self) -> str:
        now = time.time()
        ordered = self._ordered_bans()

        def left(ban: BanLine) -> str:
            if ban.expires == -1:
                return "perm"
            return "-" if ban.expires <= now else str(math.ceil((ban.expires - now) / 60))

        guid_rows = [
            f"{i}  {b.target} {left(b)} {b.reason}".rstrip()
            for i, b in enumerate(ordered)
            if "." not in b.target
        ]
        ip_rows = [
            f"{i}  {b.target:<15} {left(b)} {b.reason}".rstrip()
            for i, b in enumerate(ordered)
            if "." in b.target
        ]
        return "\n".join(
            [
                "GUID Bans:",
                "[#] [GUID] [Minutes left] [Reason]",
                "-" * 40,
                *guid_rows,
                "",
                "IP Bans:",
                "[#] [IP Address] [Minutes left] [Reason]",
                "-" * 46,
                *ip_rows,
            ]
        )

    def _add_ban(self, target: str, rest: str) -> None:
        minutes, _, reason = rest.partition(" ")
        if not minutes.isdigit():
            minutes, reason = "0", rest
        expires = -1 if int(minutes) == 0 else int(time.time()) + int(minutes) * 60
        self.bans.append(BanLine(target, expires, reason.strip()))
        self._write_bans()

    # --- players ---------------------------------------------------------------------------

    def _players_table(self) -> str:
        rows = [
            f"{p.slot:<3} {f'{p.ip}:{p.port}':<21} {p.ping:<4} {p.guid}(OK) {p.name}"
            for p in sorted(self.players.values(), key=lambda p: p.slot)
        ]
        head = ["Players on server:", "[#] [IP Address]:[Port] [Ping] [GUID] [Name]", "-" * 50]
        return "\n".join([*head, *rows, f"({len(rows)} players in total)"])

    def _kick(self, player: _Player, why: str) -> None:
        assert self.rcon is not None
        self.players.pop(player.slot, None)
        kicked = f"Player #{player.slot} {player.name} ({player.guid}) has been kicked by BattlEye"
        self.rcon.broadcast(f"{kicked}: {why}")
        self.log(f"Player {player.name} kicked off by BattlEye: {why}")
        self.rcon.broadcast(f"Player #{player.slot} {player.name} disconnected")
        self.log(f"Player {player.name} disconnected.")

    def _join(self, rest: str) -> str:
        assert self.rcon is not None
        name, guid, ip = rest.rsplit(" ", 2)
        slot = next(i for i in range(len(self.players) + 1) if i not in self.players)
        player = _Player(slot, name, guid.lower(), ip, 2304 + slot)
        self.log(f"Player {name} connecting.")
        self.rcon.broadcast(f"Player #{slot} {name} ({ip}:{player.port}) connected")
        self.rcon.broadcast(f"Player #{slot} {name} - BE GUID: {player.guid}")
        ban = self._ban_for(player.guid, ip)
        if ban is not None:
            self._kick(player, f"Admin Ban ({ban.reason})" if ban.reason else "Banned")
            return "banned"
        self.players[slot] = player
        self.rcon.broadcast(f"Verified GUID ({player.guid}) of player #{slot} {name}")
        self.log(f"Player {name} connected (id=7656119{slot:010d}).")
        return f"slot {slot}"

    # --- console commands ------------------------------------------------------------------

    def _command(self, command: str) -> str:
        verb, _, rest = command.partition(" ")
        verb = verb.lower()
        rest = rest.strip()
        handler = self._handlers().get(verb)
        if handler is not None:
            return handler(rest)
        if verb in ("#lock", "#unlock"):
            self.log(f"Server {verb[1:]}ed by RCon admin")  # fake only: tests see the order
        if verb in ("#restart", "#reassign", "#lock", "#unlock", "#init", "loadscripts"):
            return ""
        return "Unknown command"

    def _handlers(self) -> dict[str, Callable[[str], str]]:
        return {
            "players": lambda _: self._players_table(),
            "bans": lambda _: self._bans_table(),
            "kick": self._cmd_kick,
            "ban": self._cmd_ban,
            "addban": self._cmd_add_ban,
            "removeban": self._cmd_remove_ban,
            "loadbans": self._cmd_load_bans,
            "writebans": self._cmd_write_bans,
            "say": self._cmd_say,
            "missions": self._cmd_missions,
            "version": lambda _: VERSION,
            "#shutdown": self._cmd_shutdown,
            "#mission": self._cmd_mission,
            "fake.join": self._join,
            "fake.leave": self._cmd_leave,
            "fake.chat": self._cmd_chat,
            "fake.hang": self._cmd_hang,
            "fake.crash": self._cmd_crash,
            "fake.state": self._cmd_state,
            "fake.flood": self._cmd_flood,
            "fake.hog": self._cmd_hog,
        }

    def _player(self, slot: str) -> _Player | None:
        return self.players.get(int(slot)) if slot.isdigit() else None

    def _cmd_kick(self, rest: str) -> str:
        slot, _, reason = rest.partition(" ")
        player = self._player(slot)
        if player is not None:
            self._kick(player, f"Admin Kick ({reason.strip()})")
        return ""

    def _cmd_ban(self, rest: str) -> str:
        slot, _, more = rest.partition(" ")
        player = self._player(slot)
        if player is None:
            return ""
        self._add_ban(player.guid, more.strip())
        reason = self.bans[-1].reason
        self._kick(player, f"Admin Ban ({reason})" if reason else "Banned")
        return ""

    def _cmd_add_ban(self, rest: str) -> str:
        target, _, more = rest.partition(" ")
        normal = ban_target(target)
        if normal is None:
            return "Invalid GUID or IP"
        self._add_ban(normal, more.strip())
        return ""

    def _cmd_remove_ban(self, rest: str) -> str:
        ordered = self._ordered_bans()
        if not rest.isdigit() or int(rest) >= len(ordered):
            return "Invalid ban index"
        self.bans.remove(ordered[int(rest)])
        self._write_bans()
        return ""

    def _cmd_load_bans(self, _: str) -> str:
        self._load_bans()
        return ""

    def _cmd_write_bans(self, _: str) -> str:
        now = time.time()
        self.bans = [b for b in self.bans if b.expires == -1 or b.expires > now]
        self._write_bans()
        return ""

    def _cmd_say(self, rest: str) -> str:
        slot, _, text = rest.partition(" ")
        player = self._player(slot)
        if player is not None and self.rcon is not None:
            self.rcon.broadcast(f"RCon admin #0: (To {player.name}) {text}")
        return ""

    def _cmd_missions(self, _: str) -> str:
        folder = self.cwd / "mpmissions"
        names = sorted(p.name for p in folder.glob("*.pbo")) if folder.is_dir() else []
        return "\n".join(["Missions on server:", *names])

    def _cmd_shutdown(self, _: str) -> str:
        asyncio.get_running_loop().call_soon(self._stop, "#shutdown over RCon")
        return ""

    def _cmd_mission(self, rest: str) -> str:
        template, _, difficulty = rest.partition(" ")
        if template:
            self._load_mission(template, difficulty.strip())
        return ""

    def _cmd_leave(self, rest: str) -> str:
        player = self._player(rest)
        if player is None or self.rcon is None:
            return "no such player"
        del self.players[player.slot]
        self.rcon.broadcast(f"Player #{player.slot} {player.name} disconnected")
        self.log(f"Player {player.name} disconnected.")
        return ""

    def _cmd_chat(self, rest: str) -> str:
        slot, channel, text = [*rest.split(" ", 2), "", ""][:3]
        player = self._player(slot)
        if player is None or self.rcon is None:
            return "no such player"
        self.rcon.broadcast(f"({channel}) {player.name}: {text}")
        return ""

    def _cmd_hang(self, _: str) -> str:
        def hang() -> None:
            if self.rcon is not None:
                self.rcon.loss = 1.0  # every datagram in and out is dropped from now on
            self.log("Fake hang: RCon stops answering")

        asyncio.get_running_loop().call_soon(hang)
        return ""

    def _cmd_crash(self, rest: str) -> str:
        code = int(rest) if rest.isdigit() else 1
        asyncio.get_running_loop().call_later(0.05, self._crash, code)
        return ""

    def _cmd_flood(self, rest: str) -> str:
        words = rest.split()
        if len(words) not in (2, 3) or not words[1].isdigit():
            return "usage: fake.flood <tag> <count> [<seconds>]"
        tag, count, every = words[0], words[1], (words[2] if len(words) == 3 else "0")

        async def flood() -> None:
            for number in range(1, int(count) + 1):
                self.log(f"Flood {tag} {number}")
                if float(every) > 0:
                    await asyncio.sleep(float(every))

        self._flood_task = asyncio.get_running_loop().create_task(flood())
        return ""

    def _cmd_hog(self, rest: str) -> str:
        chunks = (int(rest) if rest.isdigit() else 1024) // 16
        held: list[bytes] = []

        async def hog() -> None:
            self.log(f"Fake hog: taking {chunks * 16} MiB")
            for _ in range(chunks):
                held.append(b"\x01" * (16 * 1024 * 1024))  # written, so really resident
                await asyncio.sleep(0.01)
            self.log("Fake hog: still alive")

        self._hog_task = asyncio.get_running_loop().create_task(hog())
        return ""

    def _cmd_state(self, _: str) -> str:
        return json.dumps(
            {
                "hostname": self.hostname,
                "mission": self.mission,
                "difficulty": self.difficulty,
                "players": [asdict(p) for p in self.players.values()],
                "bans": [asdict(b) for b in self._ordered_bans()],
                "rpt": None if self.rpt_path is None else str(self.rpt_path),
                "pid": os.getpid(),
                "headless": self.registry.state() if hasattr(self, "registry") else [],
            }
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `arma3server_x64` shim (see tests/fakes/arma3_bin.py)."""
    args = sys.argv if argv is None else argv
    if any(arg.lower() == "-client" for arg in args[1:]):  # a headless client
        from tests.fakes import arma3_client

        return arma3_client.main(Path(args[0]), args[1:])
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    return asyncio.run(FakeArma3(Path(args[0]), args[1:]).run())
