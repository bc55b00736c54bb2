"""Minecraft without a game process: settings, server.properties, log lines, replies, refusals."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import (
    ExecutableNotAllowed,
    ExecutableNotFound,
    InvalidInput,
    LanguardError,
    NotRunning,
    StartRefused,
)
from core.events import (
    Chat,
    EventBus,
    LogLines,
    PlayerBanned,
    PlayerJoined,
    PlayerKicked,
    PlayerLeft,
)
from core.games.base import BanKind, GameBan, OnlinePlayer, ServerContext
from core.games.minecraft import DONE, MinecraftProfile, offline_uuid
from core.games.minecraft_link import MinecraftLink
from core.games.minecraft_logs import LogEventParser, parse_banlist, parse_list, parse_message
from core.games.minecraft_settings import (
    MinecraftSettings,
    clean_text,
    parse_properties,
    render_properties,
    settings_from,
    valid_player_name,
)
from core.logs.lines import LogLine
from core.services.settings_schema import schema_for
from tests.fakes.minecraft_server import read_properties

P = "[12:34:56] [Server thread/INFO]: "
UUID_STEVE = "069a79f4-44e9-4726-a5be-fca90e38aaf5"


def _java(folder: Path) -> Path:
    java = folder / "java"
    java.write_text("#!/bin/sh\nexit 0\n")
    java.chmod(0o755)
    return java


def _ctx(
    folder: Path,
    settings: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    bans: tuple[GameBan, ...] = (),
) -> ServerContext:
    folder.mkdir(parents=True, exist_ok=True)
    return ServerContext(
        server_id=7,
        name="mc",
        folder=folder,
        settings=settings or {},
        secrets=secrets or {},
        bans=bans,
    )


def _accepted(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eula.txt").write_text("#EULA\neula=TRUE\n")
    return folder


def _file(files: Any, name: str) -> Any:
    return next(f for f in files if f.path.name == name)


# -- .properties -----------------------------------------------------------------------------

HOSTILE = [
    "a\nrcon.password=pwned",
    "x\r\nenable-rcon=true",
    "=:#!\\",
    " leading and trailing ",
    "trailing backslash\\",
    "é€😀 \u2028 \x00\x7f",
    "\\u0041 is not A",
    "#not a comment",
    "line\\\ncontinued",
    "\t\f",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_round_trip_and_inject_no_key(value: str) -> None:
    data = render_properties([("motd", value), ("rcon.password", "real")], header="x\ny=z")
    text = data.decode("ascii")
    expected = {"motd": value, "rcon.password": "real"}
    assert parse_properties(text) == expected
    assert read_properties(text) == expected  # the fake's port of java.util.Properties


@given(st.dictionaries(st.text(), st.text(), max_size=6))
def test_any_text_round_trips_through_both_readers(items: dict[str, str]) -> None:
    text = render_properties(items.items()).decode("ascii")
    assert parse_properties(text) == items
    assert read_properties(text) == items


def test_java_forms_parse_like_java() -> None:
    text = (
        "# comment\r\n! other comment\n   \n"
        "spaced = value with = sign\n"
        "colon:v\n"
        "blank  separated value\n"
        "cont = first \\\n    second\\\n\n"
        "uni=caf\\u00e9 \\ud83d\\ude00\n"
        "dup=1\ndup=2\n"
        "esc\\ key\\:x=\\t\\z\n"
        "#tail \\\n"
        "after=comment\n"
        "last=no newline\\"
    )
    expected = {
        "spaced": "value with = sign",
        "colon": "v",
        "blank": "separated value",
        "cont": "first second",
        "uni": "café 😀",
        "dup": "2",
        "esc key:x": "\tz",
        "after": "comment",
        "last": "no newline",
    }
    assert parse_properties(text) == expected
    assert read_properties(text) == expected


def test_a_malformed_existing_file_refuses_the_start(tmp_path: Path) -> None:
    folder = _accepted(tmp_path / "mc")
    (folder / "server.properties").write_text("motd=\\u12G4\n")
    with pytest.raises(ValueError):
        parse_properties("motd=\\u12G4\n")
    with pytest.raises(StartRefused, match="fix or delete it"):
        MinecraftProfile([str(_java(tmp_path))]).files(_ctx(folder))


# -- files -------------------------------------------------------------------------------------


def test_server_properties_keeps_existing_keys_and_sets_ours(tmp_path: Path) -> None:
    folder = _accepted(tmp_path / "mc")
    (folder / "server.properties").write_text(
        "#Minecraft server properties\nmotd=Hi \\u00e9\\nthere\nmax-players=5\n"
        "server-port=1\nrcon.password=stale\nenable-rcon=true\nlevel-name=my world\n"
    )
    profile = MinecraftProfile([str(_java(tmp_path))])
    files = profile.files(_ctx(folder, {"port": 25600, "stop_timeout": 5}))
    props = _file(files, "server.properties")
    assert props.secret
    written = read_properties(props.content.decode("ascii"))
    assert list(written)[:6] == [
        "motd",
        "max-players",
        "server-port",
        "rcon.password",
        "enable-rcon",
        "level-name",
    ]
    assert written["motd"] == "Hi é\nthere" and written["max-players"] == "5"
    assert written["level-name"] == "my world"
    assert (written["server-port"], written["enable-rcon"]) == ("25600", "false")
    assert (written["rcon.port"], written["rcon.password"]) == ("25601", "")
    assert [n.port for n in profile.ports(_ctx(folder, {"port": 25600}))] == [25600]


def test_rcon_settings_reach_the_file_and_the_ports_but_no_repr(tmp_path: Path) -> None:
    folder = _accepted(tmp_path / "mc")
    ctx = _ctx(
        folder,
        {"port": 25700, "enable_rcon": True, "rcon_port": 25709},
        {"rcon_password": "pw=x:y\\z"},
    )
    profile = MinecraftProfile([str(_java(tmp_path))])
    props = _file(profile.files(ctx), "server.properties")
    written = parse_properties(props.content.decode("ascii"))
    assert written["enable-rcon"] == "true" and written["rcon.port"] == "25709"
    assert written["rcon.password"] == "pw=x:y\\z"
    assert [(n.port, n.purpose) for n in profile.ports(ctx)] == [(25700, "game"), (25709, "rcon")]
    assert "pw=x" not in repr(props) + repr(ctx) + repr(settings_from(ctx.settings, ctx.secrets))
    # enable_rcon without a password: the console is used and the file says so
    no_password = _ctx(folder, {"enable_rcon": True})
    props = _file(profile.files(no_password), "server.properties")
    assert parse_properties(props.content.decode())["enable-rcon"] == "false"
    assert len(profile.ports(no_password)) == 1


@pytest.mark.parametrize("eula", [None, "eula=false\n", "eula = yes\n", "garbage\\u"])
def test_the_eula_is_never_accepted_silently(tmp_path: Path, eula: str | None) -> None:
    folder = tmp_path / "mc"
    folder.mkdir()
    if eula is not None:
        (folder / "eula.txt").write_text(eula)
    profile = MinecraftProfile([str(_java(tmp_path))])
    with pytest.raises(StartRefused, match=r"write eula=true into servers/mc/eula\.txt"):
        profile.files(_ctx(folder))
    accepting = MinecraftProfile([str(_java(tmp_path))], accept_eula=True)
    eula_file = _file(accepting.files(_ctx(folder)), "eula.txt")
    assert parse_properties(eula_file.content.decode())["eula"] == "true"


def test_bans_are_added_to_the_game_files_before_start(tmp_path: Path) -> None:
    folder = _accepted(tmp_path / "mc")
    (folder / "server.properties").write_text("online-mode=false\n")
    (folder / "usercache.json").write_text(json.dumps([{"name": "Notch", "uuid": UUID_STEVE}]))
    kept = {"uuid": "11111111-1111-1111-1111-111111111111", "name": "Old", "reason": "r"}
    (folder / "banned-players.json").write_text(json.dumps([kept]))
    bans = (
        GameBan(BanKind.NAME, "Griefer", None, "grief"),
        GameBan(BanKind.NAME, "Old", None),
        GameBan(BanKind.UUID, UUID_STEVE.upper(), 4102444800.0, "until 2100"),
        GameBan(BanKind.IP, "10.0.0.9", None, "vpn"),
        GameBan(BanKind.IP, "2001:db8::1", None),
        GameBan(BanKind.IP, "10.0.0.10", 1.0, "long expired"),
    )
    files = MinecraftProfile([str(_java(tmp_path))]).files(_ctx(folder, bans=bans))
    players = json.loads(_file(files, "banned-players.json").content)
    assert [(p["name"], p["uuid"]) for p in players] == [
        ("Old", kept["uuid"]),
        ("Griefer", offline_uuid("Griefer")),
        ("Notch", UUID_STEVE),
    ]
    assert players[1]["expires"] == "forever" and players[2]["expires"].startswith("2100-01-01")
    ips = json.loads(_file(files, "banned-ips.json").content)
    assert [(i["ip"], i["reason"]) for i in ips] == [("10.0.0.9", "vpn")]


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        "/etc/passwd",
        "--world=/srv/other",
        "--universe ../elsewhere",
        "a/../../b",
        "~/x",
        "--port 1234",
        ["bad\narg"],
        ["nul\x00"],
        "'unclosed",
        ["x" * 201],
    ],
)
def test_command_args_outside_the_rules_are_refused(args: Any) -> None:
    with pytest.raises(InvalidInput, match="command_args"):
        settings_from({"command_args": args}, {})


def test_settings_defaults_and_forms() -> None:
    settings = settings_from({"command_args": "--forceUpgrade --world 'my world'"}, {})
    assert settings.command_args == ["--forceUpgrade", "--world", "my world"]
    assert (settings.port, settings.effective_rcon_port, settings.rcon_active) == (
        25565,
        25566,
        False,
    )
    assert MinecraftSettings(port=65535).effective_rcon_port == 65534
    with pytest.raises(InvalidInput, match="rcon_port must differ"):
        settings_from({"port": 30000, "rcon_port": 30000}, {})
    with pytest.raises(InvalidInput) as refused:
        settings_from({}, {"rcon_password": "has space"})
    assert "has space" not in str(refused.value)


def test_the_settings_schema_offers_the_keys() -> None:
    schema = schema_for(MinecraftProfile(["java"]))
    parsed = schema.parse("command_args", "--world survival", {})
    assert parsed.value == ["--world", "survival"]
    assert schema.is_secret("rcon_password") and not schema.is_secret("rcon_port")
    with pytest.raises(InvalidInput):
        schema.parse("command_args", "--world /etc", {})


def test_names_and_text_for_console_commands() -> None:
    assert valid_player_name("Steve_01") == "Steve_01"
    for bad in ["", "x" * 17, "Ste ve", "Steve\nstop", "Stéve", "@a"]:
        with pytest.raises(InvalidInput):
            valid_player_name(bad)
    assert clean_text("a\nstop\r\x00b \u2028 c\u202e d\u200b", 100) == "a stop b c d"
    assert clean_text("x" * 300, 10) == "x" * 10


# -- executables ------------------------------------------------------------------------------


def test_refusals_of_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ExecutableNotFound, match="LANGUARD_MINECRAFT_COMMAND"):
        MinecraftProfile([]).check_executable()
    with pytest.raises(ExecutableNotAllowed, match="must start with java"):
        MinecraftProfile(["python3", "-m", "http.server"]).check_executable()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ExecutableNotFound) as missing:
        MinecraftProfile(["java", "-jar", "server.jar"]).check_executable()
    assert str(tmp_path) not in str(missing.value)
    plain = tmp_path / "bin" / "java"
    plain.parent.mkdir()
    plain.write_text("not executable")
    with pytest.raises(ExecutableNotFound):
        MinecraftProfile([str(plain)]).check_executable()
    plain.chmod(0o755)
    MinecraftProfile([str(plain)]).check_executable()
    monkeypatch.setenv("PATH", str(plain.parent))
    profile = MinecraftProfile(["java", "-Xmx1G", "-jar", "server.jar", "nogui"])
    folder = _accepted(tmp_path / "mc")
    ctx = _ctx(folder, {"command_args": ["--world", "w; rm -rf /"]})
    spec = profile.launch(ctx)
    assert spec.argv == (
        str(plain),
        "-Xmx1G",
        "-jar",
        "server.jar",
        "nogui",
        "--world",
        "w; rm -rf /",
    )
    assert spec.console and spec.cwd == folder
    with pytest.raises(StartRefused, match=r"server\.jar"):
        profile.prepare(ctx)
    (folder / "server.jar").write_bytes(b"")
    profile.prepare(ctx)


def test_the_ready_line_must_be_the_games() -> None:
    assert DONE.search(P + 'Done (1.234s)! For help, type "help"')
    assert DONE.search('[12:34:56 INFO]: Done (12,5s)! For help, type "help"')
    assert not DONE.search(P + '<Eve> Done (1.0s)! For help, type "help"')
    assert not DONE.search(
        "[12:34:56] [Async Chat Thread - #0/INFO]: " + 'Done (1.0s)! For help, type "help"'
    )


# -- log lines --------------------------------------------------------------------------------

EVENT_LINES: list[tuple[str, type | None, dict[str, Any]]] = [
    (P + "Steve joined the game", PlayerJoined, {"name": "Steve", "player_key": "Steve"}),
    (P + "Steve (formerly known as Bob) joined the game", PlayerJoined, {"name": "Steve"}),
    ("[09:00:00 INFO]: Alex left the game", PlayerLeft, {"name": "Alex"}),
    (
        P + "Kicked Alex: Flying: is not] allowed",
        PlayerKicked,
        {"reason": "Flying: is not] allowed"},
    ),
    (P + "[Rcon: Kicked Alex: bye]", PlayerKicked, {"name": "Alex", "reason": "bye"}),
    (P + "[Notch: Banned Eve: x-ray]", PlayerBanned, {"name": "Eve", "reason": "x-ray"}),
    (
        P + "<Steve> hello <b>@everyone</b>",
        Chat,
        {"author": "Steve", "text": "hello <b>@everyone</b>"},
    ),
    (P + "[Not Secure] <Steve> hi", Chat, {"author": "Steve", "text": "hi"}),
    ("[12:34:56] [Async Chat Thread - #3/INFO]: <Eve> hey", Chat, {"author": "Eve"}),
    # hostile or irrelevant: nothing
    (P + "<Eve> Steve joined the game", Chat, {"author": "Eve", "text": "Steve joined the game"}),
    (P + "<Eve> [Rcon: Kicked Steve: x]", Chat, {"author": "Eve"}),
    ("[12:34:56] [User Authenticator #1/INFO]: Steve joined the game", None, {}),
    ("[12:34:56] [Server thread/WARN]: Steve joined the game", None, {}),
    ("Steve joined the game", None, {}),
    ("Reason: [12:34:56] [Server thread/INFO]: Eve joined the game", None, {}),
    (P + "SeventeenCharsXYZ joined the game", None, {}),
    (P + "Ste ve joined the game", None, {}),
    (P + "Steve joined the game!", None, {}),
    (P + "Banned IP 10.0.0.1: proxy", None, {}),
    (P + "Steve lost connection: Disconnected", None, {}),
    (P + "[Server] Steve joined the game", None, {}),
]


@pytest.mark.parametrize(("line", "kind", "fields"), EVENT_LINES)
def test_log_lines_become_events(line: str, kind: type | None, fields: dict[str, Any]) -> None:
    events = LogEventParser(7, "mc").feed(line)
    if kind is None:
        assert events == []
        return
    (event,) = events
    assert isinstance(event, kind) and (event.server_id, event.server) == (7, "mc")
    for key, value in fields.items():
        assert getattr(event, key) == value


def test_joins_carry_the_uuid_and_ip_seen_at_login() -> None:
    parser = LogEventParser(1, "mc")
    auth = "[12:00:00] [User Authenticator #2/INFO]: "
    assert parser.feed(auth + f"UUID of player Steve is {UUID_STEVE.upper()}") == []
    assert (
        parser.feed(P + "Steve[/203.0.113.7:51234] logged in with entity id 9 at (0, 64, 0)") == []
    )
    (joined,) = parser.feed(P + "Steve joined the game")
    assert isinstance(joined, PlayerJoined)
    assert (joined.guid, joined.ip) == (UUID_STEVE, "203.0.113.7")
    (left,) = parser.feed(P + "Steve left the game")
    assert isinstance(left, PlayerLeft) and left.guid == UUID_STEVE
    assert parser.name_of(UUID_STEVE) == "steve"
    assert parse_message("no prefix") is None


def test_list_replies_in_both_forms() -> None:
    assert parse_list("There are 0 of a max of 20 players online: ") == []
    assert parse_list("There are 2 of a max of 20 players online: Steve, Alex_2") == [
        "Steve",
        "Alex_2",
    ]
    assert parse_list("There are 1 of a max 10 players online: Steve (" + UUID_STEVE + ")") == [
        "Steve"
    ]
    assert parse_list("There are 2/20 players online:\nSteve, Alex") == ["Steve", "Alex"]
    assert parse_list("There are 0/20 players online:") == []
    assert parse_list("There are 1/20 players online:Steve") == ["Steve"]  # RCON glues lines
    assert parse_list("There are 2 of a max of 20 players online: ok, bad name!") == ["ok"]
    assert parse_list("Unknown or incomplete command") is None


def test_banlist_replies() -> None:
    assert parse_banlist("There are no bans") == []
    lines = (
        "There are 2 ban(s):\nSteve was banned by Server: Bob was banned by Server: a\n"
        "10.0.0.1 was banned by Rcon: x"
    )
    assert parse_banlist(lines) == ["Steve", "10.0.0.1"]
    glued = (
        "There are 2 bans:Steve was banned by Server: Banned by an operator."
        "Alex was banned by Rcon: x"
    )
    assert parse_banlist(glued) == ["Steve", "Alex"]
    assert parse_banlist("That player does not exist") is None


# -- console replies, correlated through the log ----------------------------------------------


class ScriptedConsole:
    """A RuntimeControl whose game answers console lines by appending to console.log and
    publishing them as the tailer would (with byte offsets), on the next loop turn."""

    def __init__(self, folder: Path, bus: EventBus, answer: Callable[[str], list[str]]) -> None:
        self.folder = folder
        self.bus = bus
        self.answer = answer
        self.written: list[str] = []
        self.error: OSError | None = None
        self.link = None

    @property
    def pid(self) -> int:
        return os.getpid()

    def is_alive(self) -> bool:
        return True

    def emit(self, lines: list[str]) -> None:
        path = self.folder / "console.log"
        start = path.stat().st_size if path.exists() else 0
        offset, out = start, []
        for text in lines:
            offset += len(text.encode()) + 1
            out.append(LogLine(text, end=offset))
        with path.open("a") as file:
            file.writelines(text + "\n" for text in lines)
        self.bus.publish(
            LogLines(
                server_id=7,
                server="mc",
                source="console",
                file_id="f",
                lines=out,
                start_offset=start,
                end_offset=offset,
            )
        )

    def write_console(self, line: str) -> None:
        if self.error is not None:
            raise self.error
        self.written.append(line)
        asyncio.get_running_loop().call_soon(self.emit, self.answer(line))

    async def wait_for_line(self, pattern: Any, timeout: float) -> str:
        raise NotImplementedError


async def test_console_replies_skip_what_is_not_theirs(tmp_path: Path) -> None:
    bus = EventBus()
    old_list = ["There are 2/20 players online:", "Steve, Alex"]

    def answer(line: str) -> list[str]:
        if line == "list":  # a join and a chat line land between the two reply lines
            return [P + old_list[0], P + "Eve joined the game", P + "<Eve> hi", P + old_list[1]]
        if line.startswith("kick"):
            return [P + "Bob left the game", P + "Kicked Steve: bye", P + "Steve left the game"]
        return []

    control = ScriptedConsole(tmp_path, bus, answer)
    link = MinecraftLink(
        server_id=7, server="mc", folder=tmp_path, bus=bus, control=control, timeout=0.5
    )
    link.start()
    control.emit([P + "There are 9 of a max of 9 players online: Stale"])  # before: ignored
    with bus.subscribe(PlayerJoined, Chat, PlayerKicked) as events:
        assert [p.name for p in await link.players()] == ["Steve", "Alex"]
        await link.kick(OnlinePlayer(key="Steve", name="Steve"), "bye\x00")
        kinds = [type(events.get_nowait()) for _ in range(events.pending())]
    assert kinds == [PlayerJoined, Chat, PlayerKicked]
    assert control.written == ["list", "kick Steve bye"]
    with pytest.raises(LanguardError, match="did not answer `ban`"):
        await link.add_ban(GameBan(BanKind.NAME, "Steve", None))
    assert await link.command("whatever") == ""  # a raw command with no answer
    control.error = OSError(errno.ENXIO, os.strerror(errno.ENXIO))
    with pytest.raises(NotRunning, match="console cannot be written"):
        await link.probe()
    await link.close()
    assert not link.connected
    with pytest.raises(NotRunning):
        await link.players()
    assert stat.S_ISREG((tmp_path / "console.log").stat().st_mode)
