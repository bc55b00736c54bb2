"""What the outbox sends, worked out without sending: lines into messages or into a file.

Why it exists apart from the outbox: fitting lines into Discord's 2,000-unit messages (counted
in UTF-16 code units, inside a code fence the lines cannot close), and turning a backlog into
a `.log` file with a one-line summary, are pure rules over text. Here they can be tested
line by line, while `bot.outbox` keeps the queues, the worker and the calls to Discord. The
payload types (`OutMessage`, `OutFile`) live here too, since a plan is made of them.

The few words the outbox writes itself (a flood file's summary, the note after a channel
refused the bot) are in the channel's language: the caller passes its locale code (`fr`,
`en-US`...) or None for English; this module knows no Discord object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.embeds import escape_code
from bot.i18n import tr

if TYPE_CHECKING:
    import discord

__all__ = [
    "FENCE",
    "OutFile",
    "OutMessage",
    "PlannedMessage",
    "counted",
    "file_summary",
    "gap_note",
    "grouped",
    "plan_file",
    "plan_message",
    "text_units",
]

FENCE = "```"


@dataclass(frozen=True, slots=True)
class OutFile:
    filename: str
    data: bytes


@dataclass(frozen=True, slots=True)
class OutMessage:
    content: str | None = None
    embed: discord.Embed | None = None
    file: OutFile | None = None
    mention_role: int | None = None
    """The only mention the bot ever allows: a role in a give-up alert."""
    view: discord.ui.View | None = None
    """Buttons (a status message's Start/Stop/Restart); None leaves an edited message's as is."""


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """The next message of a stream and how many of its pending lines it carries."""

    message: OutMessage
    count: int


def grouped(locale: str | None, count: int) -> str:
    """`12,345` in English; the thousands separator is the catalogue's text for ","
    (a narrow space in French, where a comma is the decimal mark)."""
    return f"{count:,}".replace(",", tr(locale, ","))


def counted(locale: str | None, noun: str, count: int) -> str:
    """`3 lines`, `1 message`...: a stream's noun ("lines", "messages", "entries") counted."""
    number = grouped(locale, count)
    if noun == "messages":
        if count == 1:
            return tr(locale, "1 message")
        return tr(locale, "{count} messages", count=number)
    if noun == "entries":
        if count == 1:
            return tr(locale, "1 entry")
        return tr(locale, "{count} entries", count=number)
    if count == 1:
        return tr(locale, "1 line")
    return tr(locale, "{count} lines", count=number)


def text_units(text: str) -> int:
    """Length as Discord may count it (UTF-16 code units), never less than `len`."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def plan_message(
    texts: Sequence[str], start: int, max_chars: int, header: str, code: bool
) -> PlannedMessage | None:
    """As many lines from `start` as fit in one message; None when even the first does not."""
    overhead = text_units(header) + (len(FENCE) * 2 + 2 if code else 0)
    budget = max_chars - overhead
    body: list[str] = []
    used = -1  # n lines need n - 1 newlines
    for index in range(start, len(texts)):
        line = escape_code(texts[index]) if code else texts[index]
        cost = text_units(line) + 1
        if used + cost > budget:
            break
        body.append(line)
        used += cost
    if not body:
        return None
    joined = "\n".join(body)
    content = f"{header}{FENCE}\n{joined}\n{FENCE}" if code else f"{header}{joined}"
    return PlannedMessage(OutMessage(content=content), len(body))


def plan_file(
    lines: Sequence[str],
    start: int,
    count: int,
    max_bytes: int,
    *,
    title: str,
    noun: str,
    filename: str,
    levels: Sequence[int] | None,
    time_at: Callable[[int], float | None],
    locale: str | None = None,
) -> PlannedMessage:
    """Up to `count` lines from `start` as a `.log` file named `<filename>-<time>.log`.

    The count is halved until the file fits in `max_bytes` (one line alone is cut to fit).
    `levels` are every line's log level (None: no error and warning counts in the summary),
    `time_at(index)` when a line arrived; the file is named after the first line's time, or
    the current time when that is unknown. The summary is in `locale`'s language.
    """
    while True:
        data = ("\n".join(lines[start : start + count]) + "\n").encode("utf-8", "replace")
        if len(data) <= max_bytes or count == 1:
            break
        count = max(1, count // 2)
    data = data[:max_bytes]
    first, last = time_at(start), time_at(start + count - 1)
    shown = levels[start : start + count] if levels is not None else None
    summary = file_summary(title, count, noun, shown, first, last, locale)
    stamp = datetime.fromtimestamp(first or time.time(), UTC).strftime("%Y%m%d-%H%M%S")
    name = f"{filename}-{stamp}.log"
    return PlannedMessage(OutMessage(content=summary, file=OutFile(name, data)), count)


def file_summary(
    title: str,
    count: int,
    noun: str,
    levels: Sequence[int] | None,
    first: float | None,
    last: float | None,
    locale: str | None = None,
) -> str:
    """One line: how many lines, how many errors and warnings, from when to when."""
    parts = [f"📄 {counted(locale, noun, count)}"]
    if levels is not None:
        errors = sum(1 for level in levels if level >= 40)
        warnings = sum(1 for level in levels if 30 <= level < 40)
        parts.append(
            " "
            + tr(
                locale,
                "({errors} errors, {warnings} warnings)",
                errors=grouped(locale, errors),
                warnings=grouped(locale, warnings),
            )
        )
    if first is not None and last is not None:
        start = datetime.fromtimestamp(first, UTC)
        end = datetime.fromtimestamp(last, UTC)
        fmt = "%H:%M:%S" if start.date() == end.date() else "%Y-%m-%d %H:%M:%S"
        span = tr(locale, "{start} to {end} UTC", start=start.strftime(fmt), end=end.strftime(fmt))
        parts.append(f", {span}")
    parts.append(" — " + tr(locale, "too many to post as messages, attached as a file"))
    prefix = f"{title} " if title else ""
    return prefix + "".join(parts)


def gap_note(dropped: Mapping[str, int], locale: str | None = None) -> str:
    """The first message after a channel that refused the bot opens again: what is missing."""
    counts = ", ".join(
        counted(locale, noun, count) for noun, count in sorted(dropped.items()) if count
    )
    return "⚠️ " + tr(
        locale,
        "I could not post here for a while, so the oldest {counts} from that time were dropped "
        "(a server's log lines are still in its log files; `/logs tail` and `/logs search` "
        "read them).",
        counts=counts or tr(locale, "lines"),
    )
