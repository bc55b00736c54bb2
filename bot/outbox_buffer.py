"""A stream's queued lines in one outbox: what is waiting, what Discord already has, and
the next message they make.

Why columns rather than line objects: a flood queues hundreds of thousands of lines, and
parallel lists (text, level, end offset, file tag) cost far less than an object each.
Delivered lines are dropped in bulk once they are most of the buffer.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.outbox_plan import PlannedMessage, plan_file, plan_message
from bot.outbox_types import OutboxConfig, Stream

__all__ = ["LineBuffer"]

_log = logging.getLogger(__name__)


@dataclass(eq=False)
class LineBuffer:
    """The queued lines of one stream and how far Discord has them."""

    stream: Stream
    texts: list[str] = field(default_factory=list)
    raws: list[str] | None = None
    levels: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    stamp_at: list[int] = field(default_factory=list)
    stamp_time: list[float] = field(default_factory=list)
    pos: int = 0
    chars: int = 0
    since: float | None = None
    mark: tuple[str, int] | None = None
    committed: tuple[str, int] | None = None
    force_file: bool = False

    @property
    def pending(self) -> int:
        return len(self.texts) - self.pos

    def marked(self) -> bool:
        return self.mark is not None and self.mark != self.committed

    def time_at(self, index: int) -> float | None:
        at = bisect.bisect_right(self.stamp_at, index) - 1
        return self.stamp_time[at] if at >= 0 else None

    def compact(self) -> None:
        """Forget delivered lines once they are most of the buffer (O(1) amortised)."""
        pos = self.pos
        if pos < 4096 or pos * 2 < len(self.texts):
            return
        for column in (self.texts, self.raws, self.levels, self.ends, self.tags):
            if column is not None:
                del column[:pos]
        keep = max(0, bisect.bisect_right(self.stamp_at, pos) - 1)
        self.stamp_at = [max(0, i - pos) for i in self.stamp_at[keep:]]
        del self.stamp_time[:keep]
        self.pos = 0

    def append(
        self,
        texts: Sequence[str],
        *,
        levels: Sequence[int] | None,
        ends: Sequence[int] | None,
        tag: str,
        raws: Sequence[str] | None,
        at: float | None,
        mark: int | None,
    ) -> None:
        """Queue lines in order (see `Outbox.add_lines`)."""
        if texts:
            if raws is not None and self.raws is None:
                self.raws = list(self.texts)
            self.stamp_at.append(len(self.texts))
            self.stamp_time.append(time.time() if at is None else at)
            self.texts.extend(texts)
            if self.raws is not None:
                self.raws.extend(raws if raws is not None else texts)
            self.levels.extend(levels if levels is not None else [20] * len(texts))
            self.ends.extend(ends if ends is not None else [0] * len(texts))
            self.tags.extend([tag] * len(texts))
            self.chars += sum(map(len, texts)) + len(texts)
        if mark is not None or ends:
            self.mark = (tag, mark if mark is not None else (ends[-1] if ends else 0))

    def advance(self, count: int, now: float) -> tuple[str, int] | None:
        """`count` lines are on Discord: move past them; the position their cursor may take."""
        start = self.pos
        self.pos += count
        self.force_file = False
        self.chars -= sum(map(len, self.texts[start : self.pos])) + count
        last = self.pos - 1
        position: tuple[str, int] | None = (self.tags[last], self.ends[last])
        if not self.pending:
            self.chars = 0
            self.since = None
            if self.mark is not None:
                position = self.mark
        elif self.since is not None:
            self.since = now
        return position

    def plan(
        self, config: OutboxConfig, file_cap: int, header: str, locale: str | None = None
    ) -> PlannedMessage:
        """The next message: a batch of lines, or the backlog as a file (its summary in
        `locale`'s language)."""
        if self.force_file or self.chars > config.flood_chars:
            return self.file_plan(file_cap, header, locale)
        plan = plan_message(self.texts, self.pos, config.max_chars, header, self.stream.code)
        return plan or self.file_plan(file_cap, header, locale)

    def file_plan(self, file_cap: int, header: str, locale: str | None = None) -> PlannedMessage:
        stream = self.stream
        return plan_file(
            self.raws if self.raws is not None else self.texts,
            self.pos,
            self.pending,
            file_cap,
            title=header.strip(),
            noun=stream.noun,
            filename=stream.filename,
            levels=self.levels if stream.code else None,
            time_at=self.time_at,
            locale=locale,
        )

    def due_in(self, config: OutboxConfig, now: float) -> float:
        """Seconds until this buffer wants to send (<= 0: now; inf: nothing to do)."""
        if self.since is None:
            return math.inf
        if self.pending:
            if self.chars >= config.max_chars:
                return 0.0
            return self.since + config.linger - now
        if self.marked():
            return self.since + config.mark_linger - now
        return math.inf

    async def commit(self, position: tuple[str, int] | None) -> None:
        """Tell the stream how far Discord has its lines (once per new position)."""
        callback = self.stream.on_delivered
        if position is None or callback is None or position == self.committed:
            self.committed = position
            return
        try:
            await callback(*position)
        except Exception:  # the lines are out; a failed save only means re-posting later
            _log.exception("saving the cursor of %s failed", self.stream.key)
        self.committed = position
