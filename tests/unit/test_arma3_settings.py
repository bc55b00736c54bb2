"""Arma 3 settings validation and the profile's pure parts: launch args, files, ports."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import ConfigWriteError, ExecutableNotAllowed, ExecutableNotFound, InvalidInput
from core.games.arma3 import Arma3Profile, load_arma3_settings
from core.games.arma3_config import parse_beserver_cfg
from core.games.arma3_config_parser import parse_config
from core.games.arma3_layout import Arma3Layout
from core.games.arma3_link import ban_minutes
from core.games.arma3_settings import Arma3Settings, MissionEntry
from core.games.base import BanKind, GameBan, ServerContext

RCON = {"rcon_password": "rc0n-pass"}


def ctx(tmp_path: Path, secrets: dict[str, str] | None = None, **settings: object) -> ServerContext:
    return ServerContext(
        server_id=1,
        name="alpha",
        folder=tmp_path / "srv",
        settings=settings,
        secrets=RCON if secrets is None else secrets,
    )


def executable(tmp_path: Path, name: str = "arma3server_x64") -> Path:
    path = tmp_path / "bin" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


# --- settings ----------------------------------------------------------------------------


def test_defaults_run() -> None:
    settings = Arma3Settings()
    assert settings.port == 2302 and settings.effective_rcon_port == 2312
    assert settings.battleye and settings.difficulty == "Regular"
    assert Arma3Settings(port=2402).effective_rcon_port == 2412


def test_user_forms_are_accepted() -> None:
    settings = Arma3Settings.model_validate(
        {
            "motd": "Welcome| be nice ||Discord: x",
            "mods": "@CBA_A3;@ace;mods/@ACE 3 Extras;/opt/arma3/@tfar;@ace",
            "server_mods": "@server",
            "extra_flags": "-ENABLEHT -limitfps=120, -loadMissionToMemory",
            "difficulty": "veteran",
            "battleye": "on",
            "von": "off",
            "mission_rotation": "co10_Escape.Altis, MP_Marksmen_01.Altis.pbo:recruit",
        }
    )
    assert settings.motd == ["Welcome", "be nice", "Discord: x"]
    assert settings.mods == ["@CBA_A3", "@ace", "mods/@ACE 3 Extras", "/opt/arma3/@tfar"]
    assert settings.extra_flags == ["-enableHT", "-limitFPS=120", "-loadMissionToMemory"]
    assert settings.difficulty == "Veteran" and settings.battleye and not settings.von
    assert settings.mission_rotation == [
        MissionEntry(template="co10_Escape.Altis"),
        MissionEntry(template="MP_Marksmen_01.Altis", difficulty="Recruit"),
    ]


@pytest.mark.parametrize(
    "mod",
    [
        "../x",
        "@a/../../b",
        "@a$(rm -rf ~)",
        "@a`id`",
        "@a|b",
        "@a&b",
        "-config=x",
        "@a\nb",
        "./.",
        "@a/",
        "@a;b",
        "x" * 201,
        "~/mods",
        '@a"b',
    ],
)
def test_bad_mods_are_refused(mod: str) -> None:
    with pytest.raises(ValidationError, match="mod folder"):
        Arma3Settings(mods=[mod])


@pytest.mark.parametrize(
    ("flag", "why"),
    [
        ("-config=other.cfg", "not an allowed flag"),
        ("-par=params.txt", "not an allowed flag"),
        ("-noLogs", "not an allowed flag"),
        ("-ranking=/etc/passwd", "not an allowed flag"),
        ("-limitFPS=2", "from 5 to 1000"),
        ("-limitFPS=abc", "from 5 to 1000"),
        ("-limitFPS", "from 5 to 1000"),
        ("-enableHT=1", "takes no value"),
        ("rm -rf", "not an allowed flag"),
    ],
)
def test_bad_flags_are_refused(flag: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Arma3Settings(extra_flags=[flag])


def test_flag_rules_that_need_the_whole_model() -> None:
    with pytest.raises(ValidationError, match="once"):
        Arma3Settings(extra_flags="-limitFPS=50 -limitFPS=60")
    with pytest.raises(ValidationError, match="persistent"):
        Arma3Settings(extra_flags="-autoInit")
    assert Arma3Settings(extra_flags="-autoInit", persistent=True).extra_flags == ["-autoInit"]
    with pytest.raises(ValidationError, match="collides with the game ports"):
        Arma3Settings(port=2302, rcon_port=2306)


@pytest.mark.parametrize(
    "values",
    [
        {"max_players": 0},
        {"max_players": 257},
        {"port": 1023},
        {"port": 65001},
        {"verify_signatures": 3},
        {"difficulty": "Hard"},
        {"hostname": "two\nlines"},
        {"hostname": "   "},
        {"hostname": "x" * 101},
        {"motd": "fine|bad\x07bell"},
        {"motd": ["x" * 201]},
        {"mission_rotation": "../evil.Altis"},
        {"mission_rotation": "no_terrain"},
        {"mission_rotation": [{"template": "a.Altis", "difficulty": "Insane"}]},
        {"rcon_password": "has space"},
        {"rcon_password": "abc"},
        {"password": "line\nbreak"},
    ],
)
def test_bad_values_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Arma3Settings.model_validate(values)


def test_passwords_never_show_in_reprs() -> None:
    settings = Arma3Settings(password="hunter22", rcon_password="rc0n-pass")
    assert "hunter22" not in repr(settings) and "rc0n-pass" not in str(settings)
    assert "rc0n-pass" not in repr(ctx(Path("/x")))


# --- profile -------------------------------------------------------------------------------


def test_executable_checks_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ExecutableNotFound, match="LANGUARD_ARMA3_EXECUTABLE"):
        Arma3Profile(None).check_executable()
    with pytest.raises(ExecutableNotAllowed, match="arma3server_x64"):
        Arma3Profile(executable(tmp_path, "bash")).check_executable()
    with pytest.raises(ExecutableNotFound, match="does not exist"):
        Arma3Profile(tmp_path / "nowhere" / "arma3server").check_executable()
    exe = executable(tmp_path, "arma3server")
    exe.chmod(0o644)
    with pytest.raises(ExecutableNotFound, match="not executable"):
        Arma3Profile(exe).check_executable()
    exe.chmod(0o755)
    Arma3Profile(exe).check_executable()


def test_launch_is_an_argument_list_with_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    exe = executable(tmp_path)
    server = ServerContext(
        server_id=1,
        name="alpha",
        folder=Path("data/servers/alpha"),
        settings={
            "port": 2402,
            "hostname": 'evil" -config=/etc/passwd',
            "mods": "@CBA_A3;mods/@ACE 3",
            "server_mods": "@srv",
            "extra_flags": "-enableHT -limitFPS=90",
        },
        secrets=RCON,
    )
    spec = Arma3Profile(exe).launch(server)
    folder = (tmp_path / "data/servers/alpha").resolve()
    assert isinstance(spec.argv, tuple) and all(isinstance(a, str) for a in spec.argv)
    assert spec.argv == (
        str(exe),
        "-port=2402",
        f"-config={folder}/server.cfg",
        f"-cfg={folder}/basic.cfg",
        f"-profiles={folder}/profiles",
        "-name=server",
        f"-bepath={folder}/battleye",
        "-mod=@CBA_A3;mods/@ACE 3",
        "-serverMod=@srv",
        "-enableHT",
        "-limitFPS=90",
    )
    assert spec.cwd == folder and spec.env == {"HOME": str(folder)}
    assert not any("passwd" in arg or "rc0n" in arg for arg in spec.argv)


def test_ports_cover_the_game_block_and_rcon(tmp_path: Path) -> None:
    needs = Arma3Profile(None).ports(ctx(tmp_path, port=2402, rcon_port=2450))
    assert [(n.port, n.protocol) for n in needs] == [
        (2402, "udp"),
        (2403, "udp"),
        (2404, "udp"),
        (2405, "udp"),
        (2406, "udp"),
        (2450, "udp"),
    ]


def test_files_hold_passwords_only_in_secret_files(tmp_path: Path) -> None:
    exe = executable(tmp_path)
    now = 1_900_000_000.0
    server = ServerContext(
        server_id=1,
        name="alpha",
        folder=tmp_path / "srv",
        settings={"hostname": "Alpha", "rcon_password": "ignored-from-settings"},
        secrets={"rcon_password": "rc0n-pass", "password": "join-pw"},
        bans=(
            GameBan(BanKind.GUID, "80a5885ebe2420bab5e158a310fcbc7d", None, "cheat"),
            GameBan(BanKind.IP, "10.1.2.3", now, "spam"),
            GameBan(BanKind.NAME, "steve", None, "minecraft only"),
        ),
    )
    files = {f.path: f for f in Arma3Profile(exe).files(server)}
    layout = Arma3Layout.of(server.folder)
    be_cfg = layout.battleye / "beserver_x64.cfg"
    assert set(files) == {
        layout.server_cfg,
        layout.basic_cfg,
        layout.profiles / "Users" / "server" / "server.Arma3Profile",
        layout.linux_profile / "server.Arma3Profile",
        be_cfg,
        layout.bans_txt,
    }
    secret = {path for path, f in files.items() if f.secret}
    assert secret == {layout.server_cfg, be_cfg}
    for path, f in files.items():
        if path not in secret:
            assert b"join-pw" not in f.content and b"rc0n-pass" not in f.content
        assert "rc0n-pass" not in repr(f)
    assert parse_config(files[layout.server_cfg].content.decode()).get("password") == "join-pw"
    be = parse_beserver_cfg(files[be_cfg].content.decode())
    assert be["rconpassword"] == "rc0n-pass" and be["rconport"] == "2312"
    assert be["rconip"] == "127.0.0.1"
    assert files[layout.bans_txt].content.decode().splitlines() == [
        "80a5885ebe2420bab5e158a310fcbc7d -1 cheat",
        f"10.1.2.3 {int(now)} spam",
    ]


def test_the_32_bit_server_reads_beserver_cfg(tmp_path: Path) -> None:
    exe = executable(tmp_path, "arma3server")
    paths = [f.path.name for f in Arma3Profile(exe).files(ctx(tmp_path))]
    assert "beserver.cfg" in paths and "beserver_x64.cfg" not in paths


def test_start_is_refused_without_rcon(tmp_path: Path) -> None:
    profile = Arma3Profile(executable(tmp_path))
    with pytest.raises(ConfigWriteError, match="rcon_password"):
        profile.files(ctx(tmp_path, secrets={}))
    with pytest.raises(ConfigWriteError, match="battleye"):
        profile.files(ctx(tmp_path, battleye=False))


def test_invalid_stored_settings_become_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigWriteError, match="the setting max_players of alpha is invalid"):
        load_arma3_settings(ctx(tmp_path, max_players=999))
    with pytest.raises(ConfigWriteError, match="rcon_password") as caught:
        load_arma3_settings(ctx(tmp_path, secrets={"rcon_password": "bad password"}))
    assert "bad password" not in str(caught.value)
    with pytest.raises(ConfigWriteError, match="the settings of alpha are invalid: rcon_port"):
        load_arma3_settings(ctx(tmp_path, port=2302, rcon_port=2304))


def test_prepare_removes_only_stale_active_cfgs(tmp_path: Path) -> None:
    server = ctx(tmp_path)
    battleye = Arma3Layout.of(server.folder).battleye
    battleye.mkdir(parents=True)
    stale = [battleye / "beserver_x64_active_1a2b3c.cfg", battleye / "BEServer_active_x.cfg"]
    kept = [battleye / "beserver_x64.cfg", battleye / "bans.txt", battleye / "active.cfg"]
    for path in stale + kept:
        path.write_text("x")
    Arma3Profile(None).prepare(server)
    assert [p.exists() for p in stale] == [False, False]
    assert all(p.exists() for p in kept)
    layout = Arma3Layout.of(server.folder)
    assert layout.profiles.is_dir() and layout.mpmissions.is_dir()


def test_newest_rpt_looks_in_both_profile_folders(tmp_path: Path) -> None:
    layout = Arma3Layout.of(tmp_path)
    assert layout.newest_rpt() is None
    layout.profiles.mkdir(parents=True)
    layout.linux_profile.mkdir(parents=True)
    (layout.profiles / "arma3server_x64_2024-05-01_10-00-00.rpt").write_text("")
    newer = layout.linux_profile / "arma3server_x64_2024-05-02_10-00-00.rpt"
    newer.write_text("")
    assert layout.newest_rpt() == newer


def test_ban_minutes() -> None:
    assert ban_minutes(None, 100.0) == 0
    assert ban_minutes(100.0 + 61, 100.0) == 2
    assert ban_minutes(100.0 + 1, 100.0) == 1
    with pytest.raises(InvalidInput):
        ban_minutes(99.0, 100.0)
