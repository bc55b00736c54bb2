"""What a schedule may be: message text, the gap between runs, a schedule's number."""

from __future__ import annotations

import dataclasses
import unicodedata
from datetime import UTC, datetime, timedelta

from core.cron import CronSchedule
from core.errors import InvalidInput

__all__ = ["MAX_MESSAGE_CHARS", "check_gap", "parse_entry_id", "sanitize_message"]

MAX_MESSAGE_CHARS = 200
MIN_RESTART_GAP_MINUTES = 10
MIN_BACKUP_GAP_MINUTES = 60
"""Scheduled backups at most hourly: more only fills the disk (retention keeps a count)."""
_INVISIBLE = frozenset("\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def sanitize_message(text: str) -> str:
    """One line of plain text for the game: controls and direction overrides removed."""
    if not isinstance(text, str):
        raise InvalidInput("the message must be text")
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char.isspace() or category in ("Cc", "Zl", "Zp"):
            kept.append(" ")
        elif category not in ("Cs", "Co", "Cn") and char not in _INVISIBLE:
            kept.append(char)
    cleaned = " ".join("".join(kept).split())
    if not cleaned:
        raise InvalidInput("the message is empty; write the text players should see")
    if len(cleaned) > MAX_MESSAGE_CHARS:
        raise InvalidInput(
            "the message is {length} characters; keep it to {MAX_MESSAGE_CHARS}",
            length=len(cleaned),
            MAX_MESSAGE_CHARS=MAX_MESSAGE_CHARS,
        )
    return cleaned


def check_gap(schedule: CronSchedule, warn: tuple[int, ...], *, backup: bool = False) -> None:
    """Refuse restarts closer together than 10 minutes or than the earliest warning, and
    backups closer than an hour."""
    need = max(MIN_RESTART_GAP_MINUTES, (warn[0] + 1) if warn else 0)
    if backup:
        need = MIN_BACKUP_GAP_MINUTES
    probe = dataclasses.replace(schedule, tz=UTC)
    start = datetime(2024, 1, 25, tzinfo=UTC)  # two weeks across a month's end
    previous: datetime | None = None
    for count, run in enumerate(probe.runs(start)):
        if run - start > timedelta(days=15) or count > 3000:
            return
        if previous is not None and run - previous < timedelta(minutes=need):
            gap = int((run - previous).total_seconds() // 60)
            if backup:
                raise InvalidInput(
                    "backups would come {gap} minute(s) apart; leave at least {need} "
                    "minutes between them",
                    gap=gap,
                    need=need,
                )
            if gap == 1:
                raise InvalidInput(
                    "restarts would come 1 minute apart; leave at least {need} "
                    "minutes between them (more than the earliest warning)",
                    need=need,
                )
            raise InvalidInput(
                "restarts would come {gap} minutes apart; leave at least {need} "
                "minutes between them (more than the earliest warning)",
                gap=gap,
                need=need,
            )
        previous = run


def parse_entry_id(value: int | str) -> int:
    text = str(value).strip().lstrip("#")
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise InvalidInput("pick a schedule from the list (`/schedule list` shows their numbers)")
    return int(text)
