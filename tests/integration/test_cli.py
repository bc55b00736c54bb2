"""`python -m bot --version/--help/check/backup` as real processes on real files.

(The Discord parts of `check` and `resync` are in tests/e2e/test_cli.py.)
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# RLIMIT_FSIZE stands in for a full disk: writes past it fail with EFBIG (Python ignores
# SIGXFSZ), without needing a small file system mounted for the test.
LIMITED = (
    "import resource, sys\n"
    "limit = int(sys.argv.pop(1))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "from bot.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def run_cli(
    tmp: Path, *args: str, file_size_limit: int | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LANGUARD_")}
    clean.pop("DISCORD_TOKEN", None)
    clean.update(PYTHONPATH=str(ROOT), LANGUARD_DATA_DIR=str(tmp / "var"))
    clean.update(env)
    if file_size_limit is None:
        argv = [sys.executable, "-m", "bot", *args]
    else:
        argv = [sys.executable, "-c", LIMITED, str(file_size_limit), *args]
    result = subprocess.run(
        argv, cwd=tmp, env=clean, capture_output=True, text=True, timeout=90, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_version_is_the_installed_one(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = run_cli(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"languard {version('languard')}"


def test_help_describes_each_subcommand(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0
    for name in ("check", "backup", "resync"):
        assert any(line.strip().startswith(name + " ") for line in result.stdout.splitlines()), (
            result.stdout
        )
    assert "--version" in result.stdout
    assert not (tmp_path / "var").exists()


def test_check_with_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "check", DISCORD_TOKEN="secret-token", LANGUARD_GUILD_ID="my guild")
    assert result.returncode == 2
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("FAIL settings: LANGUARD_GUILD_ID is invalid")
    assert "secret-token" not in result.stdout + result.stderr
    assert not (tmp_path / "var").exists(), "nothing is created before the settings are good"


def test_check_local_items_on_a_fresh_folder(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    arma = tmp_path / "bin" / "arma3server_x64"
    arma.write_text("#!/bin/sh\n")  # not executable yet
    env = {
        "LANGUARD_ARMA3_EXECUTABLE": str(arma),
        "LANGUARD_MINECRAFT_COMMAND": "no-such-java-here -jar server.jar nogui",
    }
    result = run_cli(tmp_path, "check", **env)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 1
    assert lines[:3] == [
        "OK   settings: loaded",
        f"OK   data dir: {tmp_path / 'var'} will be created at first start",
        "--   database: will be created at first start",
    ]
    assert lines[4] == f"FAIL arma3: {arma} is not executable; fix: chmod +x {arma}"
    assert lines[5].startswith("FAIL minecraft: no-such-java-here is not found on PATH; fix:")
    assert lines[6] == "--   hosts: only local (no hosts.toml: servers run as processes here)"
    assert lines[7].startswith("FAIL discord: DISCORD_TOKEN is not set; fix:")
    assert not (tmp_path / "var").exists(), "check creates nothing in a missing data dir"

    arma.chmod(0o755)
    (tmp_path / "var").mkdir(mode=0o755)
    os.chmod(tmp_path / "var", 0o755)
    env["LANGUARD_MINECRAFT_COMMAND"] = f"{sys.executable} -V"
    lines = run_cli(tmp_path, "check", **env).stdout.strip().splitlines()
    assert lines[1] == (
        f"FAIL data dir: {tmp_path / 'var'} has mode 0755, expected 0700 (it holds the key "
        f"and player data); fix: chmod 700 {tmp_path / 'var'}"
    )
    assert lines[2].startswith("OK   database: ") and "migrations applied" in lines[2]
    assert lines[4] == f"OK   arma3: {arma}"
    assert lines[5].startswith("OK   minecraft: ")
    assert not (tmp_path / "var" / "secret.key").exists()


def test_check_reports_a_damaged_key_and_never_replaces_it(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir(mode=0o700)
    (data / "secret.key").write_bytes(b"not a fernet key\n")
    result = run_cli(tmp_path, "check")
    key_line = next(x for x in result.stdout.splitlines() if "secret key" in x)
    assert key_line.startswith(f"FAIL secret key: {data / 'secret.key'} does not hold a valid key")
    assert "fix: restore it from a backup" in key_line
    assert (data / "secret.key").read_bytes() == b"not a fernet key\n"


def test_check_reports_a_readable_key_file_and_changes_no_mode(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    data = tmp_path / "var"
    data.mkdir(mode=0o700)
    key = data / "secret.key"
    key.write_bytes(Fernet.generate_key() + b"\n")
    key.chmod(0o644)
    result = run_cli(tmp_path, "check")
    assert f"FAIL secret key: {key} has mode 0644, expected 0600; fix: chmod 600 {key}" in (
        result.stdout.splitlines()
    )
    assert mode(key) == 0o644, "check only reports"
    key.chmod(0o600)
    result = run_cli(tmp_path, "check")
    assert f"OK   secret key: {key} (0600)" in result.stdout.splitlines()
    assert key.read_bytes().strip().decode() not in result.stdout + result.stderr


# ----- backup -------------------------------------------------------------------------------


def make_database(data: Path, rows: int = 0) -> Path:
    data.mkdir(mode=0o700, exist_ok=True)
    path = data / "languard.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    conn.executemany("INSERT INTO notes(body) VALUES (?)", [("x" * 500,)] * rows)
    conn.commit()
    conn.close()
    (data / "secret.key").write_bytes(b"k" * 44 + b"\n")
    os.chmod(data / "secret.key", 0o600)
    return path


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[dict[str, int]]:
    """A second connection that keeps inserting rows while the test runs."""
    path = make_database(tmp_path / "var", rows=200)
    stop = threading.Event()
    counts = {"committed": 200}

    def write() -> None:
        conn = sqlite3.connect(path, timeout=30)
        try:
            while not stop.is_set():
                conn.execute("INSERT INTO notes(body) VALUES (?)", ("y" * 200,))
                conn.commit()
                counts["committed"] += 1
        finally:
            conn.close()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        stop.set()
        thread.join(timeout=30)


def test_backup_while_a_writer_writes(tmp_path: Path, writer: dict[str, int]) -> None:
    committed_before = writer["committed"]
    result = run_cli(tmp_path, "backup")
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip())
    assert folder.parent == tmp_path / "var" / "backups"
    assert len(folder.name) == len("20240101-120000")
    assert mode(folder) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["languard.db", "secret.key"]
    assert all(mode(p) == 0o600 for p in folder.iterdir())
    assert (folder / "secret.key").read_bytes() == (tmp_path / "var" / "secret.key").read_bytes()
    conn = sqlite3.connect(f"file:{folder / 'languard.db'}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        copied = conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
    finally:
        conn.close()
    assert committed_before <= copied <= writer["committed"]
    assert writer["committed"] > committed_before, "the writer kept writing meanwhile"


def test_backup_to_a_full_disk_leaves_nothing(tmp_path: Path) -> None:
    make_database(tmp_path / "var", rows=2000)  # about 1 MB
    target = tmp_path / "elsewhere"
    result = run_cli(tmp_path, "backup", "--to", str(target), file_size_limit=64 * 1024)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("languard: backup failed: "), lines
    assert list(target.iterdir()) == [], "no partial folder is left behind"
    assert result.stdout == ""


def test_backup_into_a_target_that_is_not_a_folder(tmp_path: Path) -> None:
    make_database(tmp_path / "var")
    target = tmp_path / "a-file"
    target.write_text("")
    result = run_cli(tmp_path, "backup", "--to", str(target))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"languard: backup failed: cannot write to {target}: it is not a folder"
    ]


def test_backup_without_a_database_says_so(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "backup")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"languard: backup failed: there is no database at {tmp_path / 'var' / 'languard.db'};"
        " nothing to back up"
    ]
    assert not (tmp_path / "var").exists()


def test_check_says_discord_is_unreachable(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli(
        tmp_path,
        "check",
        DISCORD_TOKEN="secret-token",
        LANGUARD_GUILD_ID="123",
        LANGUARD_DISCORD_API_BASE=f"http://127.0.0.1:{port}",
    )
    assert result.returncode == 1
    failures = [x for x in result.stdout.splitlines() if x.startswith("FAIL")]
    assert len(failures) == 1 and failures[0].startswith("FAIL discord: Discord unreachable ")
    assert "secret-token" not in result.stdout + result.stderr


def test_check_lists_every_problem_of_hosts_toml(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir(mode=0o700)
    (data / "hosts.toml").write_text(
        '[[hosts]]\nname = "b"\nendpoint = "tcp://10.0.0.2:2376"\n\n'
        '[[hosts]]\nname = "c"\nendpoint = "unix:///run/docker.sock"\nadress = "x"\n'
    )
    lines = run_cli(tmp_path, "check", LANGUARD_DATA_DIR=str(data)).stdout.splitlines()
    hosts = [line for line in lines if line.startswith("FAIL hosts:")]
    assert len(hosts) == 2, lines
    assert any("tls" in line for line in hosts) and any("adress" in line for line in hosts)
    assert all(f"edit {data / 'hosts.toml'}" in line for line in hosts)
