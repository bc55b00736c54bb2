"""What a backup holds per game (core/backups/selection.py) and how old ones are let go."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.backups.retention import DAY, RetentionPolicy, to_prune
from core.backups.selection import Glob, check_excludes, rules_for, select
from core.errors import InvalidInput


def touch(root: Path, *paths: str) -> None:
    for rel in paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.bak", "a/b/c.bak", True),  # no slash: a name in any folder
        ("/*.cfg", "server.cfg", True),
        ("/*.cfg", "@mod/userconfig/x.cfg", False),  # anchored: top level only
        ("/world/**", "world/region/r.0.0.mca", True),
        ("logs/**", "logs/2024-01-01-1.log.gz", True),
        ("/world/DIM-1", "world/DIM-1", True),
        ("r.?.?.mca", "world/region/r.0.1.mca", True),
        ("[!a]*.txt", "b.txt", True),
        ("[!a]*.txt", "a.txt", False),
    ],
)
def test_globs_work_like_gitignore(pattern: str, path: str, matches: bool) -> None:
    assert Glob(pattern).matches(path) is matches


def test_an_excluded_folder_takes_its_content_with_it() -> None:
    assert Glob("/world/DIM-1").covers("world/DIM-1/region/r.0.0.mca")
    assert not Glob("/world/DIM-1").covers("world/DIM1/region/r.0.0.mca")


def test_arma3_keeps_profiles_vars_missions_configs_and_bans_only(tmp_path: Path) -> None:
    folder = tmp_path / "alpha"
    touch(
        folder,
        "server.cfg",
        "basic.cfg",
        "profiles/Users/server/server.Arma3Profile",
        "profiles/Users/server/server.vars.Arma3Profile",
        "profiles/arma3server_x64_2024-01-01_10-00-00.rpt",
        ".local/share/Arma 3 - Other Profiles/server/server.vars.Arma3Profile",
        "mpmissions/coop.Altis.pbo",
        "battleye/bans.txt",
        "battleye/beserver_x64.cfg",
        "battleye/beserver_x64_active_1234.cfg",
        "@CBA_A3/addons/cba_main.pbo",
        "@CBA_A3/userconfig/cba.cfg",
        "console.log",
        "console.log.1",
    )
    install = tmp_path / "install"
    touch(install, "addons/data.pbo")
    (folder / "addons").symlink_to(install / "addons")
    (folder / "mpmissions" / "shared.pbo").symlink_to(install / "addons" / "data.pbo")
    chosen = select(folder, rules_for("arma3", folder))
    assert [path for path, _ in chosen.files] == [
        ".local/share/Arma 3 - Other Profiles/server/server.vars.Arma3Profile",
        "basic.cfg",
        "battleye/bans.txt",
        "battleye/beserver_x64.cfg",
        "mpmissions/coop.Altis.pbo",
        "profiles/Users/server/server.Arma3Profile",
        "profiles/Users/server/server.vars.Arma3Profile",
        "server.cfg",
    ]
    assert chosen.skipped_links == 1  # the link in mpmissions; `addons` is not wanted at all
    assert "battleye" in chosen.dirs and "mpmissions" in chosen.dirs


def test_minecraft_keeps_worlds_and_its_lists_but_not_the_jar_or_logs(tmp_path: Path) -> None:
    folder = tmp_path / "mc"
    touch(
        folder,
        "server.properties",
        "server.jar",
        "eula.txt",
        "ops.json",
        "whitelist.json",
        "banned-players.json",
        "banned-ips.json",
        "logs/latest.log",
        "crash-reports/crash.txt",
        "libraries/x.jar",
        "survival/level.dat",
        "survival/session.lock",
        "survival/region/r.0.0.mca",
        "survival_nether/DIM-1/region/r.0.0.mca",
        "other/level.dat",
        "plugins/x.jar",
    )
    (folder / "server.properties").write_text("level-name=survival\n")
    chosen = select(folder, rules_for("minecraft", folder, ["/survival_nether"]))
    files = [path for path, _ in chosen.files]
    assert files == [
        "banned-ips.json",
        "banned-players.json",
        "eula.txt",
        "ops.json",
        "other/level.dat",
        "server.properties",
        "survival/level.dat",
        "survival/region/r.0.0.mca",
        "whitelist.json",
    ]
    assert chosen.total_bytes == sum((folder / f).stat().st_size for f in files)


def test_exclusion_globs_are_checked() -> None:
    assert check_excludes([" *.bak ", "", "*.bak", "/world/DIM1"]) == ("*.bak", "/world/DIM1")
    with pytest.raises(InvalidInput):
        check_excludes(["../../etc"])
    with pytest.raises(InvalidInput):
        check_excludes(["a\nb"])
    with pytest.raises(InvalidInput):
        check_excludes([f"g{i}" for i in range(51)])


def test_retention_keeps_the_newest_n_younger_than_the_age_and_always_the_last() -> None:
    now = 100 * DAY
    backups = [(f"b{i}", now - i * DAY) for i in range(6)]  # b0 newest
    assert to_prune(backups, RetentionPolicy(keep=3, max_age=30 * DAY), now) == ["b5", "b4", "b3"]
    assert to_prune(backups, RetentionPolicy(keep=10, max_age=2.5 * DAY), now) == [
        "b5",
        "b4",
        "b3",
    ]
    old = [("only", now - 90 * DAY)]
    assert to_prune(old, RetentionPolicy(keep=1, max_age=DAY), now) == []
    assert to_prune(backups, RetentionPolicy(keep=1, max_age=30 * DAY), now, {"b4"}) == [
        "b5",
        "b3",
        "b2",
        "b1",
    ]
