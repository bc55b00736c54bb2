"""`python -m bot check`: is this install ready to run? One line per item, with the fix.

Read-mostly: it opens the database (applying pending migrations, as the bot would at start)
but never creates the secret key and never starts the supervisor, so it is safe to run next
to a live bot.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from bot.cli_discord import BoundChannel, check_discord
from bot.cli_report import Report, clean
from core.config import Settings
from core.hosts.loading import HostsFileError, load_hosts
from core.runtime import DATABASE_FILE
from core.secrets import KEY_FILE_NAME
from data.db import Database, MigrationError
from data.repositories.bindings import BindingRepository
from data.repositories.servers import ServerRepository

__all__ = ["run_check"]


async def run_check(settings: Settings, out: Callable[[str], None] = print) -> int:
    """Run every check; the exit code: 0 all passed, 1 something failed."""
    report = Report(out)
    report.ok("settings", "loaded")
    data_dir = settings.data_dir.resolve()
    exists = check_data_dir(data_dir, report)
    bindings: list[BoundChannel] | None = None
    if exists:
        bindings = await check_database(data_dir, report)
    elif not data_dir.exists():
        report.info("database", "will be created at first start")
        bindings = []
    check_secret_key(settings, data_dir, exists, report)
    check_executables(settings, report)
    check_hosts(settings, report)
    await check_discord(settings, bindings, report)
    return report.exit_code


def check_data_dir(data_dir: Path, report: Report) -> bool:
    """True when the folder exists and is usable (the database check needs it)."""
    item = "data dir"
    if not data_dir.exists():
        parent = next((p for p in data_dir.parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK | os.X_OK):
            report.ok(item, f"{data_dir} will be created at first start")
        else:
            report.fail(
                item,
                f"{data_dir} does not exist and {parent} is not writable",
                f"create it (mkdir -m 700 {data_dir}) or set LANGUARD_DATA_DIR",
            )
        return False
    if not data_dir.is_dir():
        report.fail(item, f"{data_dir} is not a folder", "set LANGUARD_DATA_DIR to a folder")
        return False
    if not os.access(data_dir, os.W_OK | os.X_OK):
        report.fail(
            item,
            f"{data_dir} is not writable by this user",
            "chown it to the user that runs the bot, or set LANGUARD_DATA_DIR",
        )
        return False
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode != 0o700:
        report.fail(
            item,
            f"{data_dir} has mode {mode:04o}, expected 0700 (it holds the key and player data)",
            f"chmod 700 {data_dir}",
        )
        return True
    report.ok(item, f"{data_dir} (0700, writable)")
    return True


async def check_database(data_dir: Path, report: Report) -> list[BoundChannel] | None:
    """Open the database (migrations apply), read the channel bindings; None on failure."""
    item = "database"
    path = data_dir / DATABASE_FILE
    try:
        db = await Database.open(path)
    except MigrationError as exc:
        report.fail(item, clean(exc), "restore the database from a backup, or report the error")
        return None
    except (sqlite3.Error, OSError) as exc:
        report.fail(
            item,
            f"{path} cannot be opened ({clean(exc)})",
            "restore it from a backup (python -m bot backup makes one) or move it away",
        )
        return None
    try:
        applied = await db.fetchval("SELECT COUNT(*) FROM schema_migrations")
        servers = {record.id: record.name for record in await ServerRepository(db).list()}
        bindings = [
            BoundChannel(clean(servers.get(b.server_id, f"#{b.server_id}")), b.kind, b.channel_id)
            for b in await BindingRepository(db).bindings()
        ]
    except sqlite3.Error as exc:
        report.fail(item, f"{path} cannot be read ({clean(exc)})", "restore it from a backup")
        return None
    finally:
        await db.close()
    report.ok(item, f"{path} opens, {applied} migrations applied")
    return bindings


def check_secret_key(settings: Settings, data_dir: Path, exists: bool, report: Report) -> None:
    """The key that decrypts stored passwords; never created here, never printed."""
    item = "secret key"
    if settings.secret_key is not None:
        try:
            Fernet(settings.secret_key.get_secret_value().strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            report.fail(
                item,
                "LANGUARD_SECRET_KEY is not a valid Fernet key",
                "use 44 url-safe base64 characters, or leave it empty to use the key file",
            )
            return
        report.ok(item, "from LANGUARD_SECRET_KEY")
        return
    path = data_dir / KEY_FILE_NAME
    # Read-only on purpose (not load_or_create_key): a check creates no key and changes no
    # mode; it reads the file the way the bot will and says what the bot would do with it.
    try:
        key = path.read_bytes().strip() if exists else b""
        file_mode = stat.S_IMODE(path.stat().st_mode) if key else 0
    except FileNotFoundError:
        key = b""
    except OSError as exc:
        _unreadable(report, item, path, exc)
        return
    if not key:
        report.ok(item, f"{path} will be created at first start")
        return
    try:
        Fernet(key)
    except ValueError:
        report.fail(
            item,
            f"{path} does not hold a valid key",
            "restore it from a backup, or set LANGUARD_SECRET_KEY (stored passwords need "
            "the key they were encrypted with)",
        )
        return
    if file_mode & 0o077:
        report.fail(item, f"{path} has mode {file_mode:04o}, expected 0600", f"chmod 600 {path}")
        return
    report.ok(item, f"{path} (0600)")


def check_executables(settings: Settings, report: Report) -> None:
    """The game programs the operator allowed; a game left unconfigured is fine."""
    exe = settings.arma3_executable
    if exe is None:
        report.info("arma3", "not configured (set LANGUARD_ARMA3_EXECUTABLE to run Arma 3)")
    elif not exe.is_file():
        report.fail(
            "arma3",
            f"{exe} does not exist",
            "install the server (steamcmd app 233780) or fix LANGUARD_ARMA3_EXECUTABLE",
        )
    elif not os.access(exe, os.X_OK):
        report.fail("arma3", f"{exe} is not executable", f"chmod +x {exe}")
    else:
        report.ok("arma3", f"{exe}")
    argv = settings.minecraft_argv
    if not argv:
        report.info("minecraft", "not configured (set LANGUARD_MINECRAFT_COMMAND to run Minecraft)")
        return
    found = shutil.which(argv[0])
    if found is None:
        report.fail(
            "minecraft",
            f"{clean(argv[0])} is not found on PATH",
            "install it (e.g. a Java runtime) or use its full path in LANGUARD_MINECRAFT_COMMAND",
        )
    else:
        report.ok("minecraft", f"{clean(argv[0])} -> {found}")


def check_hosts(settings: Settings, report: Report) -> None:
    """hosts.toml as the bot will read it at start (the engines are not called here)."""
    path = settings.hosts_path
    try:
        table = load_hosts(path, required=settings.hosts_file is not None)
    except HostsFileError as exc:
        for problem in exc.problems:
            report.fail("hosts", clean(problem), f"edit {path} (see docs/hosts.md)")
        return
    others = [spec.name for spec in table if not spec.is_local]
    if not others:
        report.info("hosts", "only local (no hosts.toml: servers run as processes here)")
    else:
        report.ok("hosts", f"local and {', '.join(others)} ({path})")
    for line in table.warnings:
        report.info("hosts", clean(line))


def _unreadable(report: Report, item: str, path: Path, exc: OSError) -> None:
    report.fail(item, f"{path} cannot be read ({clean(exc)})", f"check the permissions of {path}")
