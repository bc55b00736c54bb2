"""Log lines and in-game chat, from the bus to the outboxes of the bound channels.

A log channel keeps its own cursor per (server, source): the position of the last line
Discord accepted, saved as the log-offset consumer `channel:<id>`. The supervisor resumes
each log at the lowest cursor, so after a restart lines read but never posted are read
again; `LogLines.after(cursor)` skips the ones that were posted.

The lines themselves are the game's and go out as they are; only the words around them
(a chat stream's title) follow the channel's language.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.embeds import clean_game_text, strip_terminal
from bot.i18n import tr
from bot.outbox import Outbox
from bot.outbox_types import Stream
from core.events import Chat, LogLines
from core.logs.lines import LineBatch, LogLevel, LogLine
from core.services.channels import ChannelService, LogFilter

__all__ = ["ChatTarget", "LogTarget", "Relay", "clean_lines", "safe_filename"]

_log = logging.getLogger(__name__)

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_GENERIC_CHAT = frozenset({"", "global", "chat"})
CHAT_NAME_LIMIT = 64
CHAT_TEXT_LIMIT = 1500


def clean_lines(texts: Sequence[str]) -> list[str]:
    """Lines without ANSI escapes or control characters, cleaned in one pass per batch."""
    if not texts:
        return []
    cleaned = strip_terminal("\n".join(texts)).split("\n")
    if len(cleaned) != len(texts):  # a text held a newline: clean one by one instead
        return [strip_terminal(text).replace("\n", " ") for text in texts]
    return cleaned


def safe_filename(text: str) -> str:
    return _UNSAFE_NAME.sub("_", text).strip("._") or "log"


def _columns(lines: Sequence[LogLine]) -> tuple[Sequence[str], Sequence[int], Sequence[int]]:
    if isinstance(lines, LineBatch):
        return lines.texts, lines.levels, lines.ends
    return [ln.text for ln in lines], [ln.level for ln in lines], [ln.end for ln in lines]


def _first_time(lines: Sequence[LogLine]) -> float | None:
    stamp = lines[0].time if lines else None
    return None if stamp is None else stamp.timestamp()


@dataclass(eq=False)
class LogTarget:
    """One server's logs into one channel."""

    server_id: int
    server: str
    channel_id: int
    outbox: Outbox
    offsets: ChannelService
    """Where the channel's cursors are kept."""
    log_filter: LogFilter = LogFilter.ALL
    cursors: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Per source: how far lines were handed to the outbox (posted or queued)."""
    active: bool = True
    _streams: dict[str, Stream] = field(default_factory=dict)
    _gaps_reported: set[str] = field(default_factory=set)

    async def load_cursors(self) -> None:
        self.cursors.update(await self.offsets.channel_cursors(self.server_id, self.channel_id))

    def stream(self, source: str) -> Stream:
        stream = self._streams.get(source)
        if stream is None:

            async def delivered(file_id: str, end: int) -> None:
                if self.active:
                    await self.offsets.save_channel_cursor(
                        self.server_id, self.channel_id, source, file_id, end
                    )

            stream = Stream(
                key=f"log:{self.server_id}:{source}",
                title=f"{clean_game_text(self.server, 100)} · {clean_game_text(source, 50)}",
                filename=safe_filename(f"{self.server}-{source}"),
                on_delivered=delivered,
            )
            self._streams[source] = stream
            self.outbox.add_stream(stream)
        return stream

    def new_lines(self, event: LogLines) -> Sequence[LogLine] | None:
        """The part of the batch this channel has not had (None: nothing new)."""
        cursor = self.cursors.get(event.source)
        self.cursors[event.source] = (event.file_id, event.end_offset)
        if cursor is None or cursor[0] != event.file_id:
            return event.lines
        if event.end_offset <= cursor[1]:
            self.cursors[event.source] = cursor
            return None
        if cursor[1] < event.start_offset and event.source not in self._gaps_reported:
            self._gaps_reported.add(event.source)
            _log.warning(
                "%s/%s: channel %d missed bytes %d-%d (subscribed after they were read)",
                self.server,
                event.source,
                self.channel_id,
                cursor[1],
                event.start_offset,
            )
        return event.after(cursor[1])


@dataclass(eq=False)
class ChatTarget:
    server_id: int
    server: str
    channel_id: int
    outbox: Outbox
    stream: Stream = field(init=False)

    def __post_init__(self) -> None:
        server = clean_game_text(self.server, 100)
        self.stream = Stream(
            key=f"chat:{self.server_id}",
            title=server,
            filename=safe_filename(f"{self.server}-chat"),
            code=False,
            noun="messages",
            label=lambda locale: tr(locale, "{server} · chat", server=server),
        )
        self.outbox.add_stream(self.stream)


def chat_line(event: Chat) -> tuple[str, str]:
    """(what a message shows, escaped; what a flood file holds, plain)."""
    author = event.author.replace("\n", " ")
    text = event.text.replace("\n", " ")
    channel = event.channel.strip()
    shown = (
        f"**{clean_game_text(author, CHAT_NAME_LIMIT)}**: {clean_game_text(text, CHAT_TEXT_LIMIT)}"
    )
    raw = f"{strip_terminal(author)}: {strip_terminal(text)}"
    if channel.lower() not in _GENERIC_CHAT:
        shown = f"({clean_game_text(channel, 32)}) {shown}"
        raw = f"({strip_terminal(channel)}) {raw}"
    return shown, raw


class Relay:
    """Routes `LogLines` and `Chat` events to the channels bound to their server."""

    def __init__(self) -> None:
        self.logs: dict[int, list[LogTarget]] = {}
        self.chat: dict[int, list[ChatTarget]] = {}

    def on_lines(self, event: LogLines) -> None:
        targets = self.logs.get(event.server_id)
        if not targets:
            return
        at: float | None = None
        cleaned: dict[int, tuple[list[str], Sequence[int], Sequence[int]]] = {}
        for target in targets:
            lines = target.new_lines(event)
            if lines is None:
                continue
            if at is None:
                at = _first_time(event.lines)
            columns = cleaned.get(id(lines))
            if columns is None:
                texts, levels, ends = _columns(lines)
                columns = (clean_lines(texts), levels, ends)
                cleaned[id(lines)] = columns
            texts, levels, ends = columns
            if target.log_filter is LogFilter.WARNINGS:
                keep = [i for i, level in enumerate(levels) if level >= LogLevel.WARNING]
                texts = [texts[i] for i in keep]
                levels = [levels[i] for i in keep]
                ends = [ends[i] for i in keep]
            target.outbox.add_lines(
                target.stream(event.source),
                texts,
                levels=levels,
                ends=ends,
                tag=event.file_id,
                at=at,
                mark=event.end_offset,
            )

    def on_chat(self, event: Chat) -> None:
        targets = self.chat.get(event.server_id)
        if not targets:
            return
        shown, raw = chat_line(event)
        for target in targets:
            target.outbox.add_lines(target.stream, [shown], raws=[raw])
