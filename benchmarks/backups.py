"""Backup and restore of a Minecraft-like world: time, throughput and archive size.

A world of `--mib` MiB (region files half random, half zeros, about as compressible as real
ones) is backed up with each available compression, then restored over a changed copy and
verified file by file. Figures per compression: backup seconds and MiB/s, archive size as a
share of the data, restore seconds (stage, swap and verify). Last line: one JSON object.
Usage: python benchmarks/backups.py [--mib 256]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.backups import restore as restoring  # noqa: E402
from core.backups.archive import available_compression  # noqa: E402
from core.backups.layout import RESTORE_DIR, BackupKind, stamp_of  # noqa: E402
from core.backups.store import BackupStore  # noqa: E402
from core.backups.take import TakeRequest, copy_files, publish  # noqa: E402

REGION = 4 * 1024 * 1024


def make_world(folder: Path, mib: int) -> None:
    (folder / "world" / "region").mkdir(parents=True)
    (folder / "server.properties").write_text("level-name=world\n")
    (folder / "world" / "level.dat").write_bytes(os.urandom(4096))
    for index in range(max(1, mib * 1024 * 1024 // REGION)):
        data = os.urandom(REGION // 2) + bytes(REGION // 2)
        (folder / "world" / "region" / f"r.{index}.0.mca").write_bytes(data)
    # files older than the quiet time, as a stopped or idle world's are
    old = time.time() - 60
    for path in folder.rglob("*"):
        os.utime(path, (old, old))


def run(mib: int) -> dict[str, object]:
    figures: dict[str, object] = {"mib": mib}
    compressions = ["gzip"] + (["zstd"] if available_compression() == "zstd" else [])
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        folder = base / "servers" / "mc"
        make_world(folder, mib)
        for compression in compressions:
            store = BackupStore(base / f"backups-{compression}")
            stamp = stamp_of()
            request = TakeRequest(
                "mc",
                "minecraft",
                folder,
                stamp,
                time.time(),
                BackupKind.MANUAL,
                compression=compression,
            )
            started = time.perf_counter()
            name = publish(store, copy_files(store, request, lambda d, t: None), stamp)
            took = time.perf_counter() - started
            backup, manifest = store.load("mc", name)
            (folder / "world" / "level.dat").write_bytes(b"changed")
            started = time.perf_counter()
            (folder / RESTORE_DIR).mkdir()
            restoring.stage(folder, backup, manifest, lambda d, t: None)
            restoring.apply(folder, restoring.plan(folder, manifest, name), lambda d, t: None)
            bad = restoring.verify_restored(folder, manifest, lambda d, t: None)
            restoring.finish(folder)
            restored = time.perf_counter() - started
            assert bad is None, bad
            figures[compression] = {
                "backup_s": round(took, 3),
                "backup_mib_s": round(manifest.total_bytes / 2**20 / took, 1),
                "archive_ratio": round(manifest.archive.size / manifest.total_bytes, 3),
                "restore_s": round(restored, 3),
            }
            print(f"{compression}: {figures[compression]}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()
    print(json.dumps(run(args.mib)))


if __name__ == "__main__":
    main()
