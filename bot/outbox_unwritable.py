"""One outbox's episodes of a channel that refuses the bot (403, unknown channel).

Why apart from the worker: this is the one place where lines are dropped, and its rules
are easier to check on their own. While a channel refuses us, nothing is posted until a
long retry (`unwritable_retry`) or `retry_now()`; each buffer keeps only its newest
`unwritable_max_lines` lines and the queue its newest `unwritable_max_requests` requests,
counting what went. Before the next try, a note says what was dropped; the first success
ends the episode. The owner hears of an episode once when it starts and once when it ends.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable

from bot.outbox_buffer import LineBuffer
from bot.outbox_plan import OutMessage, gap_note
from bot.outbox_types import ChannelUnavailable, OutboxConfig, Request, Trouble
from bot.pacing import Clock

__all__ = ["Refusal", "log_episode"]

_log = logging.getLogger(__name__)

Tell = Callable[[Trouble, bool], None]
"""`(trouble, unwritable)`: the episode started (True) or ended (False)."""


def log_episode(channel_id: int, trouble: Trouble, unwritable: bool, retry: float) -> None:
    """What an outbox with no owner to tell says of an episode: one line at each end."""
    if unwritable:
        _log.warning(
            "channel %d cannot be posted to (%s); stopped posting there, next try in %.0f s",
            channel_id,
            trouble.reason,
            retry,
        )
    else:
        _log.info(
            "channel %d is writable again; %d lines and %d requests were dropped",
            channel_id,
            trouble.dropped_lines,
            trouble.dropped_requests,
        )


class Refusal:
    """The unwritable state of one channel: the current episode, the retry time, the note."""

    def __init__(self, channel_id: int, config: OutboxConfig, clock: Clock, tell: Tell) -> None:
        self.channel_id = channel_id
        self.config = config
        self._clock = clock
        self._tell = tell
        self.trouble: Trouble | None = None
        """Set while the channel refuses us; nothing is posted until `blocked_until`."""
        self.blocked_until = 0.0
        self.gap_note: Request | None = None

    def wait(self, now: float) -> float:
        """Seconds to rest before the next try (0 when not refused or the rest is over)."""
        if self.trouble is not None and self.blocked_until > now:
            return self.blocked_until - now
        return 0.0

    def retry_now(self) -> bool:
        """End the rest at once (the channel was just bound again); True if it was resting."""
        if self.trouble is None:
            return False
        self.blocked_until = 0.0
        return True

    def refused(
        self,
        exc: ChannelUnavailable,
        buffers: Iterable[LineBuffer],
        requests: deque[Request],
        in_flight: Request | None,
    ) -> None:
        """Stop posting until the long retry (one notice per episode, not per attempt)."""
        self.blocked_until = self._clock() + self.config.unwritable_retry
        if self.trouble is not None:
            _log.debug("channel %d still refuses us: %s", self.channel_id, exc)
            return
        self.trouble = Trouble(str(exc), exc.code, self._clock())
        for buf in buffers:
            self.trim(buf)
        self.trim_requests(requests, in_flight)
        self._tell(self.trouble, True)

    def accepted(self) -> None:
        """A post worked: the episode (if any) is over."""
        trouble, self.trouble = self.trouble, None
        self.blocked_until = 0.0
        self.gap_note = None
        if trouble is not None:
            self._tell(trouble, False)

    def trim(self, buf: LineBuffer) -> None:
        """Keep the newest lines of a buffer while the channel refuses us."""
        trouble = self.trouble
        excess = buf.pending - self.config.unwritable_max_lines
        if trouble is None or excess <= 0:
            return
        start = buf.pos
        buf.chars = max(0, buf.chars - sum(map(len, buf.texts[start : start + excess])) - excess)
        buf.pos += excess
        buf.force_file = False
        noun = buf.stream.noun
        trouble.dropped[noun] = trouble.dropped.get(noun, 0) + excess
        buf.compact()

    def trim_requests(self, requests: deque[Request], in_flight: Request | None) -> None:
        """Keep the newest requests while the channel refuses us; older ones fail."""
        trouble = self.trouble
        while trouble is not None and len(requests) > self.config.unwritable_max_requests:
            victim = next(
                (r for r in requests if r is not in_flight and r is not self.gap_note),
                None,
            )
            if victim is None:
                return
            requests.remove(victim)
            trouble.dropped_requests += 1
            for future in victim.futures:
                if not future.done():
                    future.set_exception(ChannelUnavailable("dropped: the channel refuses us"))

    def prepare_probe(self, requests: deque[Request], locale: str | None = None) -> None:
        """Before trying a refusing channel again: first say what was dropped meanwhile
        (in `locale`'s language, the channel's)."""
        trouble = self.trouble
        if trouble is None or not trouble.dropped_lines:
            return
        message = OutMessage(content=gap_note(trouble.dropped, locale))
        if self.gap_note is not None and self.gap_note in requests:
            self.gap_note.message = message
            return
        self.gap_note = Request("send", message)
        requests.appendleft(self.gap_note)
