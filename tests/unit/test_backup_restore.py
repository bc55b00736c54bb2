"""Stage, swap, recover (core/backups/restore.py) and the backup folders (store.py), on real
files: a crash at any point leaves the old files or the new ones, never a mix."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from core.backups import restore as restoring
from core.backups.layout import MANIFEST, RESTORE_DIR, BackupKind
from core.backups.manifest import Manifest
from core.backups.retention import RetentionPolicy
from core.backups.store import BackupStore
from core.backups.take import TakeRequest, copy_files, publish


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` (links not followed) and its SHA-256."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != RESTORE_DIR]
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def make_world(folder: Path) -> None:
    for rel, data in {
        "server.properties": b"level-name=world\n",
        "world/level.dat": os.urandom(2000),
        "world/region/r.0.0.mca": os.urandom(40_000),
        "world/region/r.0.1.mca": os.urandom(40_000),
        "ops.json": b"[]",
        "logs/latest.log": b"log line\n",
    }.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)


def take(store: BackupStore, folder: Path, game: str = "minecraft") -> tuple[str, Manifest]:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    request = TakeRequest("mc", game, folder, stamp, time.time(), BackupKind.MANUAL)
    name = publish(store, copy_files(store, request, lambda d, t: None), stamp)
    return name, store.load("mc", name)[1]


def change_world(folder: Path) -> None:
    (folder / "world" / "level.dat").write_bytes(b"changed")
    (folder / "world" / "region" / "r.0.1.mca").unlink()
    (folder / "world" / "region" / "r.5.5.mca").write_bytes(b"new region")
    (folder / "world" / "new-folder").mkdir()
    (folder / "ops.json").write_bytes(b'[{"name": "griefer"}]')
    (folder / "logs" / "latest.log").write_bytes(b"newer log\n")


def restore_all(folder: Path, store: BackupStore, name: str, manifest: Manifest) -> None:
    backup = store.folder("mc") / name
    (folder / RESTORE_DIR).mkdir()
    restoring.stage(folder, backup, manifest, lambda d, t: None)
    restoring.apply(folder, restoring.plan(folder, manifest, name), lambda d, t: None)
    assert restoring.verify_restored(folder, manifest, lambda d, t: None) is None
    restoring.finish(folder)


def test_a_restore_brings_back_every_file_and_leaves_the_rest_alone(tmp_path: Path) -> None:
    folder = tmp_path / "servers" / "mc"
    make_world(folder)
    store = BackupStore(tmp_path / "backups")
    name, manifest = take(store, folder)
    before = tree(folder)
    change_world(folder)
    restore_all(folder, store, name, manifest)
    after = tree(folder)
    assert after.pop("logs/latest.log") != before.pop("logs/latest.log")  # logs are not backed up
    assert after == before
    assert not (folder / "world" / "new-folder").exists()
    assert not (folder / RESTORE_DIR).exists()


def test_a_crash_in_the_middle_of_the_swap_is_finished_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "servers" / "mc"
    make_world(folder)
    store = BackupStore(tmp_path / "backups")
    name, manifest = take(store, folder)
    before = tree(folder)
    change_world(folder)
    (folder / RESTORE_DIR).mkdir()
    restoring.stage(folder, store.folder("mc") / name, manifest, lambda d, t: None)
    plan = restoring.plan(folder, manifest, name)
    real_move = restoring._move
    moves = 0

    def crash_after_two(source: Path, target: Path) -> None:
        nonlocal moves
        if moves == 2:
            raise KeyboardInterrupt("power cut")
        moves += 1
        real_move(source, target)

    monkeypatch.setattr(restoring, "_move", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        restoring.apply(folder, plan, lambda d, t: None)
    monkeypatch.setattr(restoring, "_move", real_move)
    assert tree(folder) != before  # half-way: some files new, some old
    outcome = restoring.recover(folder)
    assert outcome is not None and name in outcome
    restored = tree(folder)
    restored.pop("logs/latest.log")
    before.pop("logs/latest.log")
    assert restored == before
    assert not (folder / RESTORE_DIR).exists()


def test_a_crash_before_the_swap_leaves_the_old_files(tmp_path: Path) -> None:
    folder = tmp_path / "servers" / "mc"
    make_world(folder)
    store = BackupStore(tmp_path / "backups")
    name, manifest = take(store, folder)
    change_world(folder)
    changed = tree(folder)
    (folder / RESTORE_DIR).mkdir()
    restoring.stage(folder, store.folder("mc") / name, manifest, lambda d, t: None)
    assert restoring.recover(folder) == "dropped an unfinished restore (no file had been replaced)"
    assert tree(folder) == changed
    assert restoring.recover(folder) is None


def test_a_link_in_the_way_is_moved_aside_never_written_through(tmp_path: Path) -> None:
    folder = tmp_path / "servers" / "mc"
    make_world(folder)
    store = BackupStore(tmp_path / "backups")
    name, manifest = take(store, folder)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep me")
    os.rename(folder / "world", tmp_path / "old-world")
    (folder / "world").symlink_to(outside, target_is_directory=True)
    restore_all(folder, store, name, manifest)
    assert not (folder / "world").is_symlink() and (folder / "world" / "level.dat").is_file()
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]


def test_the_store_lists_only_complete_backups_and_cleans_leftovers(tmp_path: Path) -> None:
    folder = tmp_path / "servers" / "mc"
    make_world(folder)
    store = BackupStore(tmp_path / "backups", mirror=tmp_path / "mirror")
    (tmp_path / "mirror").mkdir()
    name, _ = take(store, folder)
    store.copy_to_mirror("mc", name)
    partial = store.staging("mc", "20200101T000000Z")
    (partial / "files.tar.gz").write_bytes(b"half")
    no_manifest = store.folder("mc") / "20200101T000001Z"
    no_manifest.mkdir()
    listed = store.list("mc")
    assert [b.name for b in listed] == [name] and listed[0].mirrored
    assert listed[0].kind is BackupKind.MANUAL and listed[0].files == 5
    assert store.clean_leftovers("mc") == 1 and not partial.exists()
    assert (store.folder("mc", tmp_path / "mirror") / name / MANIFEST).is_file()
    assert store.delete("mc", name)
    assert store.list("mc") == [] and store.list("mc", tmp_path / "mirror") == []
    assert not store.delete("mc", "../../etc")


def test_pruning_applies_to_both_destinations_and_keeps_the_protected(tmp_path: Path) -> None:
    folder = tmp_path / "servers" / "mc"
    make_world(folder)
    (tmp_path / "mirror").mkdir()
    store = BackupStore(tmp_path / "backups", mirror=tmp_path / "mirror")
    names = []
    for _ in range(3):
        name, _ = take(store, folder)
        store.copy_to_mirror("mc", name)
        names.append(name)
    deleted = store.prune("mc", RetentionPolicy(keep=1), time.time(), frozenset({names[0]}))
    assert deleted == [names[1]]
    assert [b.name for b in store.list("mc")] == [names[2], names[0]]
    assert [b.name for b in store.list("mc", tmp_path / "mirror")] == [names[2], names[0]]
