"""`python -m bot [subcommand]`: run the bot (no subcommand), or one operator task."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.config import SettingsError, load_settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Languard: a Discord bot that runs dedicated game servers.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"languard: {exc}", file=sys.stderr)
        return 2
    from bot.run import run_bot

    return run_bot(settings)
