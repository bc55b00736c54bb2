"""Arma 3 headless clients, the pure parts: the setting, server.cfg, each HC's launch."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.embeds import server_status_embed
from core.games.arma3 import Arma3Profile
from core.games.arma3_config_parser import parse_config
from core.games.arma3_files import render_server_cfg
from core.games.arma3_headless import PAR_FILE, headless_specs, par_safe, render_par
from core.games.arma3_settings import Arma3Settings
from core.games.base import Companions, ServerContext
from core.mods import Role
from core.mods.modset import ModsetEntry, write_modset
from core.services.server_views import ServerStatus
from core.supervisor.states import ServerState
from tests.fakes.arma3_client import read_par
from tests.fakes.arma3_server import parse_launch_args

RCON = {"rcon_password": "rc0n-pass"}
EXE = Path("/opt/arma3/arma3server_x64")


def ctx(tmp_path: Path, password: str | None = None, **settings: object) -> ServerContext:
    secrets = dict(RCON) | ({} if password is None else {"password": password})
    return ServerContext(
        server_id=1, name="alpha", folder=tmp_path / "srv", settings=settings, secrets=secrets
    )


def specs_for(tmp_path: Path, password: str | None = None, **settings: object) -> list:
    context = ctx(tmp_path, password, **settings)
    settings_model = Arma3Settings.model_validate(
        {**settings, **({"password": password} if password else {})}
    )
    return headless_specs(EXE, context, settings_model)


# --- the setting -------------------------------------------------------------------------


def test_headless_clients_defaults_to_none_and_is_bounded() -> None:
    assert Arma3Settings().headless_clients == 0
    assert Arma3Settings(headless_clients=3).headless_clients == 3
    for bad in (-1, 11):
        with pytest.raises(ValidationError):
            Arma3Settings(headless_clients=bad)


def test_each_headless_client_takes_a_player_slot() -> None:
    with pytest.raises(ValidationError, match="takes a player slot"):
        Arma3Settings(headless_clients=4, max_players=4)
    assert Arma3Settings(headless_clients=3, max_players=4).headless_clients == 3


def test_the_setting_has_a_description_members_can_read() -> None:
    field = Arma3Settings.model_fields["headless_clients"]
    assert field.description and "headless" in field.description
    assert len(field.description) <= 100


# --- server.cfg ----------------------------------------------------------------------------


def test_server_cfg_lets_local_headless_clients_in_only_when_there_are_some() -> None:
    text = render_server_cfg(Arma3Settings(headless_clients=2))
    parsed = parse_config(text)
    assert parsed.get("headlessClients") == ["127.0.0.1"]
    assert parsed.get("localClient") == ["127.0.0.1"]
    assert 'headlessClients[] = {"127.0.0.1"};' in text  # no trailing comma (ASWA #70)
    plain = parse_config(render_server_cfg(Arma3Settings()))
    assert plain.get("headlessClients") is None and plain.get("localClient") is None


# --- launch --------------------------------------------------------------------------------


def test_each_hc_gets_its_argv_folder_and_par_file(tmp_path: Path) -> None:
    specs = specs_for(tmp_path, "s3cret-pass", headless_clients=2, port=2402, mods="@CBA_A3;@ace")
    folder = (tmp_path / "srv").resolve()
    assert [spec.key for spec in specs] == ["hc-1", "hc-2"]
    first = specs[0]
    hc = folder / "headless" / "hc-1"
    assert list(first.launch.argv) == [
        str(EXE),
        "-client",
        "-connect=127.0.0.1",
        "-port=2402",
        f"-profiles={hc}",
        "-name=hc-1",
        f"-par={hc / PAR_FILE}",
        "-mod=@CBA_A3;@ace",
    ]
    assert first.launch.cwd == folder  # the server folder: mods and game data resolve there
    assert first.launch.env == {"HOME": str(hc)}  # the Linux game keeps its profile in HOME
    assert first.log_path == hc / "console.log"
    (par,) = first.files
    assert par.path == hc / PAR_FILE and par.secret
    assert not any("s3cret" in arg for arg in first.launch.argv)
    assert specs[1].launch.argv[5] == "-name=hc-2"


def test_the_par_file_gives_the_game_exactly_the_password(tmp_path: Path) -> None:
    password = "p@ss-w0rd;#x/y*"
    (spec,) = specs_for(tmp_path, password, headless_clients=1)
    path = tmp_path / "launch.txt"
    path.write_bytes(spec.files[0].content)
    assert parse_launch_args(read_par(path)) == {"password": password}


def test_no_password_no_password_option(tmp_path: Path) -> None:
    (spec,) = specs_for(tmp_path, headless_clients=1)
    assert b"-password" not in spec.files[0].content
    assert not any(arg.startswith("-password") for arg in spec.launch.argv)
    assert not any(arg.startswith("-mod=") for arg in spec.launch.argv)


@pytest.mark.parametrize(
    "password", ['a"b', "a//b", "a/*b", "a\\b", "#ab", " ab", "a b", "a__LINE__"]
)
def test_a_password_the_par_file_would_change_goes_on_the_command_line(
    tmp_path: Path, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert not par_safe(password)
    with caplog.at_level(logging.WARNING):
        (spec,) = specs_for(tmp_path, password, headless_clients=1)
    assert f"-password={password}" in spec.launch.argv
    assert b"-password" not in spec.files[0].content
    assert "local users can see it" in caplog.text and password not in caplog.text


def test_render_par_is_plain_lines() -> None:
    assert render_par("abc").decode().splitlines()[1:] == ["-password=abc"]
    assert render_par(None).decode().startswith("//")


def test_no_headless_clients_no_companions(tmp_path: Path) -> None:
    assert specs_for(tmp_path) == []


def test_the_arma3_profile_offers_its_hcs_to_the_supervisor(tmp_path: Path) -> None:
    profile = Arma3Profile(EXE)
    assert isinstance(profile, Companions)
    specs = profile.companions(ctx(tmp_path, "pw", headless_clients=2))
    assert [spec.key for spec in specs] == ["hc-1", "hc-2"]


def test_managed_mods_give_hcs_client_and_headless_only_mods_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "srv"
    entries = []
    for item_id, name, role in (
        (1, "@cba_a3", Role.CLIENT),
        (2, "@server_tools", Role.SERVER),
        (3, "@ace", Role.CLIENT),
        (4, "@hc_only", Role.HEADLESS),
    ):
        tree = tmp_path / "trees" / name
        tree.mkdir(parents=True)
        entries.append(ModsetEntry(item_id, name, name, role, tree, tree))
    write_modset(folder, entries, base_keys=None)
    (spec,) = specs_for(tmp_path, headless_clients=1, mods="@extra")
    mod = [arg for arg in spec.launch.argv if arg.startswith("-mod=")]
    assert mod == ["-mod=modset/@cba_a3;modset/@ace;modset/@hc_only;@extra"]
    assert not any("server_tools" in arg for arg in spec.launch.argv)


@pytest.mark.parametrize(
    ("locale", "label"), [(None, "Headless clients"), ("fr", "Clients headless")]
)
def test_the_status_embed_shows_the_hcs(locale: str | None, label: str) -> None:
    status = ServerStatus(
        *("alpha", "arma3", ServerState.RUNNING, "ready", 10.0, 123, None, None, ()),
        *(None, None, None, "127.0.0.1:2302", False),
        headless=(1, 2),
    )
    fields = {f.name: f.value for f in server_status_embed(status, locale).fields}
    assert fields[label] == "1/2"
    assert label not in {
        f.name for f in server_status_embed(replace(status, headless=None), locale).fields
    }
