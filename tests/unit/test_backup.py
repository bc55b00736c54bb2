"""data/backup.py on real SQLite files: complete copies or nothing."""

from __future__ import annotations

import sqlite3
import stat
from datetime import datetime
from pathlib import Path

import pytest

from data.backup import BackupError, create_backup, create_backup_async
from data.db import Database

WHEN = datetime(2024, 5, 6, 7, 8, 9)


def make_database(folder: Path, rows: int = 50) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "languard.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    conn.execute("CREATE INDEX notes_body ON notes(body)")
    conn.executemany("INSERT INTO notes(body) VALUES (?)", [(f"note {i:05}",) for i in range(rows)])
    conn.commit()
    conn.close()
    return path


def rows_in(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0])
    finally:
        conn.close()


def test_a_backup_is_a_dated_private_folder_with_one_file_per_item(tmp_path: Path) -> None:
    db = make_database(tmp_path / "var")
    key = tmp_path / "var" / "secret.key"
    key.write_bytes(b"key\n")
    missing = tmp_path / "var" / "absent.file"
    folder = create_backup(db, tmp_path / "backups", extra_files=[key, missing], now=WHEN)
    assert folder == tmp_path / "backups" / "20240506-070809"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["languard.db", "secret.key"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert rows_in(folder / "languard.db") == 50
    assert (folder / "secret.key").read_bytes() == b"key\n"


def test_the_copy_is_one_self_contained_file(tmp_path: Path) -> None:
    """WAL is switched off in the copy: copying the folder alone restores everything."""
    folder = create_backup(make_database(tmp_path / "var"), tmp_path / "b", now=WHEN)
    conn = sqlite3.connect(folder / "languard.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()


def test_two_backups_in_the_same_second_do_not_collide(tmp_path: Path) -> None:
    db = make_database(tmp_path / "var")
    first = create_backup(db, tmp_path / "b", now=WHEN)
    second = create_backup(db, tmp_path / "b", now=WHEN)
    assert first.name == "20240506-070809" and second.name == "20240506-070809-2"


def test_a_damaged_database_fails_the_integrity_check_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    db = make_database(tmp_path / "var", rows=3000)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=DELETE")  # all pages in the main file
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.close()
    with db.open("r+b") as raw:  # scribble over an index page in the middle
        raw.seek(page_size * 10 + 100)
        raw.write(b"\xff" * 400)
    with pytest.raises(BackupError, match="integrity check"):
        create_backup(db, tmp_path / "b", now=WHEN)
    assert list((tmp_path / "b").iterdir()) == []


def test_an_unreadable_extra_file_removes_the_partial_folder(tmp_path: Path) -> None:
    db = make_database(tmp_path / "var")
    a_folder = tmp_path / "var" / "secret.key"
    a_folder.mkdir()
    with pytest.raises(BackupError, match=r"cannot read .*secret\.key"):
        create_backup(db, tmp_path / "b", extra_files=[a_folder], now=WHEN)
    assert list((tmp_path / "b").iterdir()) == []


async def test_the_async_form_copies_a_database_the_bot_holds_open(tmp_path: Path) -> None:
    """The bot's own connection (aiosqlite, WAL) stays open and keeps writing."""
    db = await Database.open(tmp_path / "var" / "languard.db")
    try:
        await db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        for i in range(20):
            await db.execute("INSERT INTO notes(body) VALUES (?)", (f"n{i}",))
        folder = await create_backup_async(db.path, tmp_path / "b", now=WHEN)
        await db.execute("INSERT INTO notes(body) VALUES ('after')")
    finally:
        await db.close()
    assert rows_in(folder / "languard.db") == 20
