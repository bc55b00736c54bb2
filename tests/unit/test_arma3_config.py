"""Arma config rendering: hostile text stays text, every file parses back to what was meant."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.games.arma3_config import (
    Assign,
    BanLine,
    ConfigClass,
    clean_text,
    parse_bans_txt,
    parse_beserver_cfg,
    quote,
    render_bans_txt,
    render_beserver_cfg,
    render_config,
    sanitize_line,
)
from core.games.arma3_config_parser import ConfigParseError, parse_config
from core.games.arma3_files import render_arma3profile, render_basic_cfg, render_server_cfg
from core.games.arma3_settings import Arma3Settings

HOSTILE = [
    'My "Best" Server',
    'x"; passwordAdmin = "owned";',
    '};\nclass Missions { class M { template = "evil.Altis"; }; };',
    "C:\\Arma3\\new\\",
    'ends with a backslash \\"',
    "line one\nline two\n",
    "\n",
    '""',
    "Сервер 🚀 サーバー",
    "// not a comment /* nor this */",
    '#include "x"',
    "\\n",
    "",
]


def one_value(value: object) -> object:
    return parse_config(render_config(ConfigClass().set("v", value))).get("v")


def test_quotes_are_doubled_and_backslashes_are_literal() -> None:
    assert quote('say "hi"') == '"say ""hi"""'
    assert quote("C:\\new") == '"C:\\new"'
    assert quote("a\nb") == '"a" \\n "b"'
    assert quote("a\x00b\rc\td\x7fe\x85f") == '"abcdef"'


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_round_trip_as_text(text: str) -> None:
    root = ConfigClass().set("hostname", text).set("maxPlayers", 10)
    parsed = parse_config(render_config(root))
    assert parsed.get("hostname") == text
    assert [e.name for e in parsed.entries] == ["hostname", "maxPlayers"]
    assert parsed == root


@pytest.mark.parametrize("text", [t for t in HOSTILE if "\n" not in t and t])
def test_a_hostile_hostname_cannot_add_keys_to_server_cfg(text: str) -> None:
    settings = Arma3Settings(hostname=text, password="p", rcon_password="rconpw")
    parsed = parse_config(render_server_cfg(settings))
    assert parsed.get("hostname") == text
    assert parsed.get("passwordAdmin") is None
    assert parsed.child("Missions") is None
    names = [e.name for e in parsed.entries if isinstance(e, Assign)]
    assert len(names) == len(set(names))


@given(st.text())
def test_any_text_survives_render_and_parse(text: str) -> None:
    assert one_value(text) == clean_text(text)


@given(st.lists(st.text(), max_size=5))
def test_any_list_of_text_survives_as_an_array(items: list[str]) -> None:
    assert one_value(items) == [clean_text(item) for item in items]


def test_clean_text_keeps_newlines_and_printable_unicode_only() -> None:
    assert clean_text("a\r\nb\tc\x00d\x1be\u0085f\u2028g\ufeffh") == "a\nbcdef\u2028g\ufeffh"


def test_sanitize_line_flattens_and_caps() -> None:
    assert sanitize_line("  kick\nme\r\x00now\u2028please ", 100) == "kick me now please"
    assert sanitize_line("x" * 50, 10) == "x" * 10
    assert sanitize_line("\n\n", 10) == ""


def test_numbers_bools_nested_arrays_and_classes_round_trip() -> None:
    root = ConfigClass().set("a", True).set("b", -3).set("c", 0.001).set("d", 2.0)
    root.set("e", [1, "x", [2, "y"]])
    root.add_class("Outer").add_class("Inner").set("f", 1e-9)
    parsed = parse_config(render_config(root, ["a header; with } in it"]))
    assert parsed == root
    assert parsed.get("A") == 1 and parsed.get("d") == 2
    assert isinstance(parsed.get("d"), int)
    outer = parsed.child("outer")
    assert outer is not None and outer.child("INNER") is not None


def test_bad_names_and_values_are_refused() -> None:
    with pytest.raises(ValueError):
        ConfigClass().set("host name", "x")
    with pytest.raises(ValueError):
        ConfigClass().add_class("};")
    with pytest.raises(ValueError):
        ConfigClass().set("x", float("nan"))
    with pytest.raises(TypeError):
        ConfigClass().set("x", object())


def test_the_reader_handles_the_wiki_syntax() -> None:
    text = """
    // comment
    hostname = "A ""quoted"" name"; /* block
    comment */
    motd[] = {"one", "two" \\n "lines",};
    admins[] += {"123"};
    maxPlayers = 0x10;
    class Missions {
        class Mission01 {                 // any name
            template = "MP_Marksmen_01.Altis";
            difficulty = Regular;
            class Params { RespawnDelay = 15; };
        };
    };
    class Empty;
    """
    parsed = parse_config(text)
    assert parsed.get("hostname") == 'A "quoted" name'
    assert parsed.get("motd") == ["one", "two\nlines"]
    assert parsed.get("admins") == ["123"]
    assert parsed.get("maxplayers") == 16
    missions = parsed.child("Missions")
    assert missions is not None
    mission = missions.classes()[0]
    assert mission.get("template") == "MP_Marksmen_01.Altis"
    assert mission.get("difficulty") == "Regular"
    assert parsed.child("Empty") == ConfigClass("Empty")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('hostname = "x"\nmaxPlayers = 2;', 1),
        ('a = 1;\nb = "unterminated;\n', 2),
        ("class A {\n a = 1;\n", 2),
        ("a = ;", 1),
        ("a[] = {1 2};", 1),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(ConfigParseError, match=f"line {line}"):
        parse_config(text)


def test_server_cfg_has_every_key_and_the_mission_rotation() -> None:
    settings = Arma3Settings(
        hostname="Alpha",
        password="join me",
        admin_password='ad"min',
        server_command_password="cmd",
        rcon_password="rconpw",
        max_players=40,
        motd="Welcome|Be nice",
        motd_interval=7,
        difficulty="Recruit",
        verify_signatures=1,
        persistent=True,
        von=False,
        mission_rotation=[
            {"template": "co10_Escape.Altis", "difficulty": "Veteran"},
            "MP_Marksmen_01.Altis.pbo",
        ],
    )
    parsed = parse_config(render_server_cfg(settings))
    expected = {
        "hostname": "Alpha",
        "password": "join me",
        "passwordAdmin": 'ad"min',
        "serverCommandPassword": "cmd",
        "maxPlayers": 40,
        "motd": ["Welcome", "Be nice"],
        "motdInterval": 7,
        "verifySignatures": 1,
        "BattlEye": 1,
        "persistent": 1,
        "disableVoN": 1,
        "kickDuplicate": 1,
        "timeStampFormat": "full",
    }
    assert {e.name: e.value for e in parsed.entries if isinstance(e, Assign)} == expected
    missions = parsed.child("Missions")
    assert missions is not None
    assert [(m.name, m.get("template"), m.get("difficulty")) for m in missions.classes()] == [
        ("Mission01", "co10_Escape.Altis", "Veteran"),
        ("Mission02", "MP_Marksmen_01.Altis", "Recruit"),
    ]


def test_server_cfg_without_optional_parts() -> None:
    parsed = parse_config(render_server_cfg(Arma3Settings()))
    assert parsed.get("password") is None and parsed.get("motd") is None
    assert parsed.child("Missions") is None
    assert parsed.get("disableVoN") == 0


def test_basic_cfg_and_profile_parse() -> None:
    basic = parse_config(render_basic_cfg())
    assert basic.get("MinErrorToSend") == 0.001
    sockets = basic.child("sockets")
    assert sockets is not None and sockets.get("maxPacketSize") == 1400
    profile = parse_config(render_arma3profile(Arma3Settings(difficulty="Custom")))
    assert profile.get("difficulty") == "Custom"
    presets = profile.child("DifficultyPresets")
    assert presets is not None
    custom = presets.child("CustomDifficulty")
    assert custom is not None and custom.get("aiLevelPreset") == 3
    options = custom.child("Options")
    assert options is not None and options.get("thirdPersonView") == 0


def test_beserver_cfg_binds_loopback_and_refuses_unquotable_passwords() -> None:
    text = render_beserver_cfg(password="s3cr3t!", port=2312)
    assert parse_beserver_cfg(text) == {
        "rconpassword": "s3cr3t!",
        "rconport": "2312",
        "rconip": "127.0.0.1",
        "restrictrcon": "0",
    }
    for bad in ["with space", "new\nline", 'q"uote', "", "é", "x" * 65]:
        with pytest.raises(ValueError):
            render_beserver_cfg(password=bad, port=2312)
    with pytest.raises(ValueError):
        render_beserver_cfg(password="ok", port=70000)
    with pytest.raises(ValueError):
        render_beserver_cfg(password="ok", port=2312, bind="localhost\nRConPort 1")


def test_bans_txt_skips_expired_and_invalid_and_flattens_reasons() -> None:
    now = 1_700_000_000.0
    bans = [
        BanLine("80A5885EBE2420BAB5E158A310FCBC7D", -1, "cheating\nRConPassword x"),
        BanLine("10.0.0.7", int(now) + 600, "spam"),
        BanLine("20446897121fafa82c1069ed07820f27", int(now) - 1, "expired"),
        BanLine("not-a-guid", -1, "nonsense"),
        BanLine("::1", -1, "ipv6 is not a BattlEye ban"),
    ]
    text = render_bans_txt(bans, now=now)
    assert text.splitlines() == [
        "80a5885ebe2420bab5e158a310fcbc7d -1 cheating RConPassword x",
        f"10.0.0.7 {int(now) + 600} spam",
    ]
    assert parse_bans_txt(text + "garbage line\n\n1.2.3.4 notanumber x\n") == [
        BanLine("80a5885ebe2420bab5e158a310fcbc7d", -1, "cheating RConPassword x"),
        BanLine("10.0.0.7", int(now) + 600, "spam"),
    ]
