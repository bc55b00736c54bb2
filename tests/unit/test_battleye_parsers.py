"""BattlEye console text → values: real captures, awkward names, and never raising."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.rcon.battleye_parsers import (
    Admin,
    AdminLogin,
    Ban,
    BanKind,
    ChatMessage,
    GuidVerified,
    KickKind,
    Player,
    PlayerConnected,
    PlayerDisconnected,
    PlayerGuid,
    PlayerKicked,
    RawMessage,
    RconSay,
    parse_admins,
    parse_bans,
    parse_message,
    parse_players,
)

GUID = "80a5885ebe2420bab5e158a310fcbc7d"

PLAYERS = """Players on server:
[#] [IP Address]:[Port] [Ping] [GUID] [Name]
--------------------------------------------------
0   76.108.91.78:2304     63   80a5885ebe2420bab5e158a310fcbc7d(OK) Bravo17
10  37.232.159.82:2354    105  20446897121fafa82c1069ed07820f27(OK) Максим
4   192.168.0.100:2316    0    0123456789abcdef0123456789abcdef(?) [TAG] Joe (x): y (Lobby)
(3 players in total)"""

BANS = """GUID Bans:
[#] [GUID] [Minutes left] [Reason]
----------------------------------------
0  331e64806b30277076963283eea16438 perm TeamKill. Ban perm
508 c20b9665b392c4c7633d14b151a4deb3 8971 [admin][18.07.15 13:38:14] Sabotage
509 c20b9665b392c4c7633d14b151a4deb4 -

IP Bans:
[#] [IP Address] [Minutes left] [Reason]
----------------------------------------------
365 212.90.39.93    perm Admin Ban TK"""


def test_players_from_a_real_capture() -> None:
    assert parse_players(PLAYERS) == [
        Player(0, "76.108.91.78", 2304, 63, GUID, True, "Bravo17", False),
        Player(
            10,
            "37.232.159.82",
            2354,
            105,
            "20446897121fafa82c1069ed07820f27",
            True,
            "Максим",
            False,
        ),
        Player(
            4,
            "192.168.0.100",
            2316,
            0,
            "0123456789abcdef0123456789abcdef",
            False,
            "[TAG] Joe (x): y",
            True,
        ),
    ]


def test_empty_server() -> None:
    text = "Players on server:\n[#] [IP Address]:[Port] [Ping] [GUID] [Name]\n---\n"
    text += "(0 players in total)"
    assert parse_players(text) == []


def test_bans_share_one_index_space() -> None:
    assert parse_bans(BANS) == [
        Ban(0, BanKind.GUID, "331e64806b30277076963283eea16438", None, False, "TeamKill. Ban perm"),
        Ban(
            508,
            BanKind.GUID,
            "c20b9665b392c4c7633d14b151a4deb3",
            8971,
            False,
            "[admin][18.07.15 13:38:14] Sabotage",
        ),
        Ban(509, BanKind.GUID, "c20b9665b392c4c7633d14b151a4deb4", 0, True, ""),
        Ban(365, BanKind.IP, "212.90.39.93", None, False, "Admin Ban TK"),
    ]
    assert parse_bans(BANS)[0].permanent
    assert not parse_bans(BANS)[1].permanent


def test_admins() -> None:
    text = "Connected RCon admins:\n[#] [IP Address]:[Port]\n" + "-" * 29
    text += "\n0 46.149.73.255:58606\n1 127.0.0.1:2"
    assert parse_admins(text) == [Admin(0, "46.149.73.255", 58606), Admin(1, "127.0.0.1", 2)]


def test_tables_skip_lines_they_do_not_understand() -> None:
    assert parse_players("garbage\n0 1.2.3.4:5 x y") == []
    assert parse_bans("nonsense line\n12 notaguid perm x") == []
    assert parse_admins("0 nowhere") == []


def test_every_documented_message() -> None:
    cases: list[tuple[str, object]] = [
        ("RCon admin #0 (76.108.91.78:62382) logged in", AdminLogin(0, "76.108.91.78", 62382)),
        (
            "Player #0 Bravo17 (76.108.91.78:2304) connected",
            PlayerConnected(0, "Bravo17", "76.108.91.78", 2304),
        ),
        (
            "Player #0 Bravo17 - BE GUID: 907725ff524e1026154b5ac3cccb0258",
            PlayerGuid(0, "Bravo17", "907725ff524e1026154b5ac3cccb0258", unverified=False),
        ),
        (
            f"Player #0 Bravo17 - GUID: {GUID} (unverified)",
            PlayerGuid(0, "Bravo17", GUID, unverified=True),
        ),
        (f"Verified GUID ({GUID}) of player #0 Bravo17", GuidVerified(0, "Bravo17", GUID)),
        ("Player #4 Kauldron disconnected", PlayerDisconnected(4, "Kauldron")),
        (
            f"Player #2 NZ ({GUID}) has been kicked by BattlEye: Script Restriction #107",
            PlayerKicked(2, "NZ", GUID, KickKind.BATTLEYE, "Script Restriction #107"),
        ),
        (
            f"Player #0 dzotester ({GUID}) has been kicked by BattlEye: Admin Kick (dzo test kick)",
            PlayerKicked(0, "dzotester", GUID, KickKind.ADMIN_KICK, "dzo test kick"),
        ),
        (
            f"Player #0 x ({GUID}) has been kicked by BattlEye: Admin Ban (cheating (again))",
            PlayerKicked(0, "x", GUID, KickKind.ADMIN_BAN, "cheating (again)"),
        ),
        (
            f"Player #0 x ({GUID}) has been kicked by BattlEye: Admin Kick ()",
            PlayerKicked(0, "x", GUID, KickKind.ADMIN_KICK, ""),
        ),
        (
            f"Player #1 y ({GUID}) has been kicked by BattlEye: Client not responding",
            PlayerKicked(1, "y", GUID, KickKind.BATTLEYE, "Client not responding"),
        ),
        ("(Global) Bravo17: hello there", ChatMessage("Global", "Bravo17", "hello there")),
        ("(Side) Максим: привет: как дела", ChatMessage("Side", "Максим", "привет: как дела")),
        ("(Vehicle) a: ", ChatMessage("Vehicle", "a", "")),
        ("RCon admin #0: (Global) server restarts in 5", RconSay(0, None, "server restarts in 5")),
        ("RCon admin #1: (To MM Leon) behave", RconSay(1, "MM Leon", "behave")),
        ("Connected to BE Master", RawMessage("Connected to BE Master")),
        (
            "Ban check timed out, no response from BE Master",
            RawMessage("Ban check timed out, no response from BE Master"),
        ),
        ("(Global) no separator", RawMessage("(Global) no separator")),
        ("(Shout) a: b", RawMessage("(Shout) a: b")),
        ("Player #x bad", RawMessage("Player #x bad")),
        ("", RawMessage("")),
    ]
    for text, expected in cases:
        assert parse_message(text) == expected, text


def test_known_names_resolve_colons_and_parentheses() -> None:
    names = ["Sgt: Pepper", "A) B"]
    assert parse_message("(Group) Sgt: Pepper: on me", names=names) == ChatMessage(
        "Group", "Sgt: Pepper", "on me"
    )
    assert parse_message("RCon admin #0: (To A) B) hi", names=names) == RconSay(0, "A) B", "hi")
    assert parse_message("(Group) Other: x: y", names=names) == ChatMessage(
        "Group", "Other", "x: y"
    )


# Names as players choose them: spaces, brackets, colons, any script; no line breaks.
names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"),
    min_size=1,
    max_size=24,
).filter(lambda s: s == s.strip())
guids = st.text("0123456789abcdef", min_size=32, max_size=32)
ids = st.integers(0, 999)
ips = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ports = st.integers(1, 65535)


@given(st.text())
def test_parsers_never_raise(text: str) -> None:
    assert isinstance(parse_players(text), list)
    assert isinstance(parse_bans(text), list)
    assert isinstance(parse_admins(text), list)
    assert parse_message(text) is not None
    assert parse_message(text, names=[text[:5]]) is not None


@given(st.sampled_from(["Player #", "RCon admin #", "(Global) ", "Verified GUID ("]), st.text())
def test_message_parser_never_raises_on_near_misses(prefix: str, rest: str) -> None:
    assert parse_message(prefix + rest) is not None


@given(ids, ips, ports, st.integers(0, 9999), guids, st.booleans(), names, st.booleans())
def test_players_round_trip(
    pid: int, ip: str, port: int, ping: int, guid: str, ok: bool, name: str, lobby: bool
) -> None:
    mark = "(OK)" if ok else "(?)"
    suffix = " (Lobby)" if lobby else ""
    line = f"{pid:<4}{ip + ':' + str(port):<22}{ping:<5}{guid}{mark} {name}{suffix}"
    parsed = parse_players(f"Players on server:\n{line}\n(1 players in total)")
    if name.endswith(" (Lobby)"):  # indistinguishable from the lobby suffix
        return
    assert parsed == [Player(pid, ip, port, ping, guid, ok, name, lobby)]


@given(
    ids,
    names,
    ips,
    ports,
    guids,
    st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s),
)
def test_messages_round_trip_with_any_name(
    pid: int, name: str, ip: str, port: int, guid: str, reason: str
) -> None:
    assert parse_message(f"Player #{pid} {name} ({ip}:{port}) connected") == PlayerConnected(
        pid, name, ip, port
    )
    assert parse_message(f"Player #{pid} {name} - BE GUID: {guid}") == PlayerGuid(
        pid, name, guid, unverified=False
    )
    assert parse_message(f"Verified GUID ({guid}) of player #{pid} {name}") == GuidVerified(
        pid, name, guid
    )
    assert parse_message(f"Player #{pid} {name} disconnected") == PlayerDisconnected(pid, name)
    kicked = parse_message(
        f"Player #{pid} {name} ({guid}) has been kicked by BattlEye: Admin Kick ({reason})"
    )
    assert kicked == PlayerKicked(pid, name, guid, KickKind.ADMIN_KICK, reason)
    assert parse_message(f"(Direct) {name}: {reason}", names=[name]) == ChatMessage(
        "Direct", name, reason
    )
    assert parse_message(f"RCon admin #{pid}: (To {name}) {reason}", names=[name]) == RconSay(
        pid, name, reason
    )


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            guids,
            ips,
            st.sampled_from(["perm", "-", "5", "100000"]),
            st.text("abc ()[]:.", max_size=20),
        ),
        max_size=8,
    )
)
def test_bans_round_trip(rows: list[tuple[bool, str, str, str, str]]) -> None:
    guid_rows = [r for r in rows if r[0]]
    ip_rows = [r for r in rows if not r[0]]
    lines = ["GUID Bans:", "[#] [GUID] [Minutes left] [Reason]", "-" * 40]
    expected = []
    index = 0
    for section, chosen in (("guid", guid_rows), ("ip", ip_rows)):
        if section == "ip":
            lines += ["", "IP Bans:", "[#] [IP Address] [Minutes left] [Reason]", "-" * 46]
        for _, guid, ip, left, reason in chosen:
            target = guid if section == "guid" else ip
            lines.append(f"{index} {target:<15} {left} {reason}".rstrip())
            minutes = None if left == "perm" else 0 if left == "-" else int(left)
            expected.append(
                Ban(index, BanKind(section), target, minutes, left == "-", reason.strip())
            )
            index += 1
    assert parse_bans("\n".join(lines)) == expected
