"""`python -m bot [subcommand]`: run the bot (no subcommand), or one operator task."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from core.config import Settings, SettingsError, load_settings

__all__ = ["main", "package_version"]


def package_version() -> str:
    """The installed languard version ("unknown" when run from a plain checkout)."""
    try:
        return metadata.version("languard")
    except metadata.PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Languard: a Discord bot that runs dedicated game servers. "
        "Without a subcommand, run the bot.",
    )
    parser.add_argument("--version", action="version", version=f"languard {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{check,backup,resync}")
    sub.add_parser(
        "check",
        help="check settings, data folder, database, key, game programs and Discord access",
        description="One line per item with the fix for each failure. "
        "Exit code: 0 all passed, 1 something failed, 2 a setting is invalid.",
    )
    backup = sub.add_parser(
        "backup",
        help="copy the database and the key into a dated folder (safe while the bot runs)",
        description="Writes <data dir>/backups/<YYYYmmdd-HHMMSS>/ (or under --to) and prints it.",
    )
    backup.add_argument(
        "--to", type=Path, metavar="DIR", help="put the dated folder under DIR instead"
    )
    sub.add_parser(
        "resync",
        help="push the slash commands to every configured guild now",
        description="Forces the command sync even when the stored fingerprint is unchanged.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        if args.command == "check":
            print(f"FAIL settings: {exc}")
        else:
            print(f"languard: {exc}", file=sys.stderr)
        return 2
    if args.command is None:
        from bot.run import run_bot

        return run_bot(settings)
    try:
        return _subcommand(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, never a traceback with local values
        from bot.cli_report import clean

        name = type(exc).__name__
        print(f"languard: {args.command} failed: {name}: {clean(exc)}", file=sys.stderr)
        return 1


def _subcommand(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in ("check", "resync"):
        from bot.api_base import apply_api_base

        problem = apply_api_base(os.environ)  # test-only: a local fake Discord
        if problem is not None:
            print(f"languard: {problem}", file=sys.stderr)
            return 2
    if args.command == "check":
        from bot.cli_check import run_check

        return asyncio.run(run_check(settings))
    if args.command == "backup":
        return _backup(settings, args.to)
    from bot.cli_resync import run_resync

    return asyncio.run(run_resync(settings))


def _backup(settings: Settings, to: Path | None) -> int:
    from core.runtime import DATABASE_FILE
    from core.secrets import KEY_FILE_NAME
    from data.backup import BackupError, create_backup

    data_dir = settings.data_dir.resolve()
    root = to.resolve() if to is not None else data_dir / "backups"
    try:
        folder = create_backup(
            data_dir / DATABASE_FILE, root, extra_files=[data_dir / KEY_FILE_NAME]
        )
    except BackupError as exc:
        print(f"languard: backup failed: {exc}", file=sys.stderr)
        return 1
    print(folder)
    if settings.secret_key is not None:
        print(
            "languard: note: the key is set in LANGUARD_SECRET_KEY, not in a file; "
            "keep a copy of it with this backup",
            file=sys.stderr,
        )
    return 0
