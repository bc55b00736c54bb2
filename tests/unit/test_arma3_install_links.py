from __future__ import annotations

from pathlib import Path

from core.games.arma3_layout import link_install


def make_install(root: Path) -> Path:
    install = root / "arma3"
    for folder in ("addons", "dta", "keys", "@cba_a3", "enoch", "mpmissions", "battleye"):
        (install / folder).mkdir(parents=True)
    (install / "battleye" / "beserver_x64.so").write_bytes(b"\x7fELF")
    (install / "arma3server_x64").write_text("#!/bin/sh\n")
    (install / "server.cfg").write_text('hostname = "shared";\n')
    (install / ".git").mkdir()
    return install


def test_game_data_is_linked_and_what_a_server_owns_is_not(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    folder = install / "var" / "servers" / "alpha"  # the data dir inside the install
    (folder / "battleye").mkdir(parents=True)
    linked = link_install(install, folder, folder / "battleye")
    assert set(linked) == {"addons", "dta", "keys", "@cba_a3", "enoch", "battleye/beserver_x64.so"}
    for name in ("addons", "dta", "keys", "@cba_a3", "enoch"):
        assert (folder / name).is_symlink() and (folder / name).resolve() == install / name
    assert (folder / "battleye" / "beserver_x64.so").resolve() == (
        install / "battleye" / "beserver_x64.so"
    )
    for name in ("mpmissions", "server.cfg", "arma3server_x64", "var", ".git"):
        assert not (folder / name).is_symlink(), name
    assert link_install(install, folder, folder / "battleye") == []  # idempotent


def test_an_admins_own_folder_is_never_replaced(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    folder = tmp_path / "servers" / "alpha"
    (folder / "keys").mkdir(parents=True)
    (folder / "keys" / "mine.bikey").write_text("k")
    (folder / "battleye").mkdir()
    link_install(install, folder, folder / "battleye")
    assert not (folder / "keys").is_symlink()
    assert (folder / "keys" / "mine.bikey").exists()
    assert (folder / "addons").is_symlink()


def test_a_missing_install_folder_links_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "alpha"
    folder.mkdir()
    assert link_install(tmp_path / "nowhere", folder, folder) == []
