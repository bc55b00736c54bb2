"""The lowercase tree, the keys folder and a server folder's mod set (real files)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.games.arma3 import Arma3Profile
from core.games.base import ServerContext
from core.mods import LaunchMods, ModsNotReady, Role, launch_mods
from core.mods.keys import RECORD, find_keys, release_keys, sync_keys
from core.mods.model import ModError
from core.mods.modset import ModsetEntry, clear_modset, write_modset
from core.mods.tree import build_tree


def files(root: Path, layout: dict[str, bytes]) -> Path:
    for rel, data in layout.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


# -- the lowercase tree ---------------------------------------------------------------------


def test_tree_lowercases_and_never_touches_the_workshop_copy(tmp_path: Path) -> None:
    source = files(
        tmp_path / "content" / "1",
        {
            "Addons/CBA_Main.pbo": b"pbo",
            "Addons/CBA_Main.pbo.CBA.bisign": b"sig",
            "Keys/CBA_A3.bikey": b"key",
            "meta.cpp": b"name",
        },
    )
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", source / "Escape.txt")  # never followed
    os.symlink(tmp_path, source / "Up")
    before = snapshot(source)

    report = build_tree(source, tmp_path / "lower" / "1")

    tree = tmp_path / "lower" / "1"
    assert (tree / "addons" / "cba_main.pbo").read_bytes() == b"pbo"
    assert (tree / "addons" / "cba_main.pbo.cba.bisign").is_symlink()
    assert (tree / "keys" / "cba_a3.bikey").resolve() == (source / "Keys/CBA_A3.bikey").resolve()
    assert not (tree / "escape.txt").exists() and not (tree / "up").exists()
    assert report.files == 4 and report.folders == 2
    assert snapshot(source) == before  # nothing renamed, nothing written in the Workshop copy
    assert (source / "Addons").is_dir() and not (source / "addons").exists()


def test_tree_rebuild_replaces_and_merges_case_twins(tmp_path: Path) -> None:
    source = files(tmp_path / "c", {"Addons/A.pbo": b"1", "addons/b.pbo": b"2"})
    dest = tmp_path / "lower" / "9"
    build_tree(source, dest)
    assert sorted(p.name for p in (dest / "addons").iterdir()) == ["a.pbo", "b.pbo"]
    (source / "Addons" / "A.pbo").unlink()
    files(source, {"Addons/C.pbo": b"3", "ADDONS/c.PBO": b"dup"})
    report = build_tree(source, dest)
    assert sorted(p.name for p in (dest / "addons").iterdir()) == ["b.pbo", "c.pbo"]
    assert report.clashes == ("addons/c.pbo",)
    assert (dest / "addons" / "c.pbo").read_bytes() == b"dup"  # the first in name order
    assert not list(dest.parent.glob(".*"))  # no half-built tree left behind


def test_tree_of_a_missing_item(tmp_path: Path) -> None:
    with pytest.raises(ModError, match="missing"):
        build_tree(tmp_path / "nope", tmp_path / "lower" / "1")


# -- keys -----------------------------------------------------------------------------------


def mod_with_keys(root: Path, name: str) -> Path:
    return files(
        root,
        {
            f"Keys/{name}.bikey": name.encode(),
            f"{name}_Root.BIKEY": b"root-" + name.encode(),
            f"Some/Deep/Folder/{name}_Deep.bikey": b"deep-" + name.encode(),
            f"Optionals/@{name}_Extra/Keys/{name}_Extra.bikey": b"optional",
            f"Addons/{name}.pbo": b"pbo",
        },
    )


def test_keys_are_found_at_any_depth_but_not_in_optionals(tmp_path: Path) -> None:
    root = mod_with_keys(tmp_path / "ace", "ACE")
    os.symlink(tmp_path / "elsewhere.bikey", root / "Link.bikey")
    names = sorted(p.name for p in find_keys(root))
    assert names == ["ACE.bikey", "ACE_Deep.bikey", "ACE_Root.BIKEY"]


def test_sync_keys_owns_the_folder_and_removes_stale_keys(tmp_path: Path) -> None:
    install_keys = files(tmp_path / "install" / "keys", {"a3.bikey": b"bis", "other.bikey": b"o"})
    server = tmp_path / "srv"
    server.mkdir()
    (server / "keys").symlink_to(install_keys)  # what link_install left: shared by all servers
    ace = mod_with_keys(tmp_path / "ace", "ACE")
    cba = files(tmp_path / "cba", {"keys/cba_a3.bikey": b"cba", "keys/same.bikey": b"cba-same"})
    rhs = files(tmp_path / "rhs", {"keys/same.bikey": b"rhs-same"})

    first = sync_keys(server / "keys", [(1, cba), (2, ace), (3, rhs)], install_keys)

    keys = server / "keys"
    assert keys.is_dir() and not keys.is_symlink()
    assert sorted(p.name for p in keys.iterdir() if p.name != RECORD) == [
        "3_same.bikey",
        "ACE.bikey",
        "ACE_Deep.bikey",
        "ACE_Root.bikey",
        "a3.bikey",
        "cba_a3.bikey",
        "same.bikey",
    ]
    assert (keys / "same.bikey").read_bytes() == b"cba-same"
    assert (keys / "3_same.bikey").read_bytes() == b"rhs-same"
    assert len(first.added) == 7
    assert sorted(p.name for p in install_keys.iterdir()) == ["a3.bikey", "other.bikey"]

    (keys / "admin.bikey").write_bytes(b"mine")  # dropped in by hand: never ours to remove
    second = sync_keys(keys, [(1, cba)], install_keys)
    assert sorted(second.removed) == ["3_same.bikey", "ACE.bikey", "ACE_Deep.bikey",
                                      "ACE_Root.bikey"]  # fmt: skip
    assert second.added == ()
    assert sorted(p.name for p in keys.iterdir() if p.name != RECORD) == [
        "a3.bikey",
        "admin.bikey",
        "cba_a3.bikey",
        "same.bikey",
    ]

    assert sorted(release_keys(keys)) == ["a3.bikey", "cba_a3.bikey", "same.bikey"]
    assert [p.name for p in keys.iterdir()] == ["admin.bikey"]
    (keys / "admin.bikey").unlink()
    sync_keys(keys, [], install_keys)
    release_keys(keys)
    assert not keys.exists()  # emptied: the next start links the install's keys again


def test_an_oversized_key_is_skipped(tmp_path: Path) -> None:
    mod = files(tmp_path / "m", {"keys/big.bikey": b"x" * 100_000, "keys/ok.bikey": b"k"})
    sync_keys(tmp_path / "keys", [(1, mod)], None)
    assert (tmp_path / "keys" / "ok.bikey").exists()
    assert not (tmp_path / "keys" / "big.bikey").exists()


# -- a server folder's set ------------------------------------------------------------------


def entry(tmp_path: Path, item_id: int, name: str, role: Role, built: bool = True) -> ModsetEntry:
    source = mod_with_keys(tmp_path / "content" / str(item_id), name)
    tree = tmp_path / "lower" / str(item_id)
    if built:
        build_tree(source, tree)
    return ModsetEntry(item_id, name, "@" + name.lower(), role, tree, source)


def test_modset_links_manifest_keys_and_launch(tmp_path: Path) -> None:
    install = files(tmp_path / "bin", {"keys/a3.bikey": b"bis"})
    server = tmp_path / "srv"
    entries = [
        entry(tmp_path, 1, "CBA", Role.CLIENT),
        entry(tmp_path, 2, "Tweaks", Role.SERVER),
        entry(tmp_path, 3, "HCAI", Role.HEADLESS),
        entry(tmp_path, 4, "ACE", Role.CLIENT),
    ]
    report = write_modset(server, entries, base_keys=install / "keys")

    assert report.missing == ()
    assert (server / "modset" / "@ace" / "addons" / "ace.pbo").read_bytes() == b"pbo"
    names = {p.name for p in (server / "keys").iterdir()}
    assert {"a3.bikey", "CBA.bikey", "ACE_Deep.bikey", "HCAI.bikey"} <= names
    assert "Tweaks.bikey" not in names  # server-only: not sent to clients, no key needed
    mods = launch_mods(server)
    assert mods is not None
    assert mods.server_args() == [
        "-mod=modset/@cba;modset/@ace",
        "-serverMod=modset/@tweaks",
    ]
    assert mods.headless_mods() == ["modset/@cba", "modset/@hcai", "modset/@ace"]

    # ACE leaves the set: its link and its keys go, the others stay
    write_modset(server, entries[:3], base_keys=install / "keys")
    assert not (server / "modset" / "@ace").exists()
    assert not any(p.name.startswith("ACE") for p in (server / "keys").iterdir())
    assert "CBA.bikey" in {p.name for p in (server / "keys").iterdir()}

    assert clear_modset(server)
    assert launch_mods(server) is None
    assert not (server / "modset").exists() and not (server / "keys").exists()


def test_a_mod_not_downloaded_refuses_the_start(tmp_path: Path) -> None:
    server = tmp_path / "srv"
    entries = [
        entry(tmp_path, 1, "CBA", Role.CLIENT),
        entry(tmp_path, 2, "ACE", Role.CLIENT, False),
    ]
    report = write_modset(server, entries, base_keys=None)
    assert report.missing == ("ACE",)
    with pytest.raises(ModsNotReady, match="ACE"):
        launch_mods(server)


@pytest.mark.parametrize(
    "manifest",
    [
        "not json",
        json.dumps({"mods": [{"path": "../../etc", "role": "client"}]}),
        json.dumps({"mods": [{"path": "modset/@a;-x", "role": "client"}]}),
        json.dumps({"mods": [{"path": "modset/@a", "role": "god"}]}),
        json.dumps(["x"]),
    ],
)
def test_a_damaged_manifest_is_refused(tmp_path: Path, manifest: str) -> None:
    files(tmp_path / "srv", {"modset/modset.json": manifest.encode()})
    with pytest.raises(ModError, match="damaged"):
        launch_mods(tmp_path / "srv")


def test_modset_never_writes_through_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "install_modset"
    elsewhere.mkdir()
    server = tmp_path / "srv"
    server.mkdir()
    (server / "modset").symlink_to(elsewhere)
    write_modset(server, [entry(tmp_path, 1, "CBA", Role.CLIENT)], base_keys=None)
    assert list(elsewhere.iterdir()) == []
    assert (server / "modset").is_dir() and not (server / "modset").is_symlink()


def arma3(tmp_path: Path, **settings: object) -> tuple[Arma3Profile, ServerContext]:
    exe = tmp_path / "bin" / "arma3server_x64"
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    ctx = ServerContext(1, "alpha", tmp_path / "srv", settings, {"rcon_password": "rc0n-pass"})
    return Arma3Profile(exe), ctx


def test_profile_launch_with_and_without_a_managed_set(tmp_path: Path) -> None:
    profile, ctx = arma3(tmp_path, mods="@Local;@Other", server_mods="@srv")
    argv = profile.launch(ctx).argv
    assert [a for a in argv if a.startswith(("-mod=", "-serverMod="))] == [
        "-mod=@Local;@Other",
        "-serverMod=@srv",
    ]  # no managed set: the free-text settings alone, as before
    write_modset(
        ctx.folder,
        [entry(tmp_path, 1, "CBA", Role.CLIENT), entry(tmp_path, 2, "Tweaks", Role.SERVER)],
        base_keys=None,
    )
    argv = profile.launch(ctx).argv
    assert [a for a in argv if a.startswith(("-mod=", "-serverMod="))] == [
        "-mod=modset/@cba;@Local;@Other",
        "-serverMod=modset/@tweaks;@srv",
    ]
    assert LaunchMods().server_args() == []
